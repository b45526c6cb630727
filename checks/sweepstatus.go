package checks

import (
	"net/netip"
	"slices"
	"sync"
)

// MeshPeer is one sweep peer of the current epoch and how its probe went.
type MeshPeer struct {
	Address netip.AddrPort `json:"address"`
	// State is up or down as its last probe in this epoch went; unknown until it is probed.
	State State `json:"state"`
}

// sweepEpoch remembers the sweep peers of the latest epoch and their last
// outcome: the sweep series is shared by all of them, so it alone cannot
// say which peer failed. It holds at most the plan's sweep peers.
type sweepEpoch struct {
	mu    sync.Mutex
	epoch int64
	peers []MeshPeer
}

// begin starts a run's record: a new epoch forgets the old peers' outcomes.
func (s *sweepEpoch) begin(epoch int64, peers []netip.AddrPort) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch == s.epoch && slices.EqualFunc(s.peers, peers, func(p MeshPeer, a netip.AddrPort) bool { return p.Address == a }) {
		return // the same epoch's peers again: keep what earlier runs found
	}
	s.epoch, s.peers = epoch, make([]MeshPeer, len(peers))
	for i, a := range peers {
		s.peers[i].Address = a
	}
}

// set records the outcome of the probe of a.
func (s *sweepEpoch) set(a netip.AddrPort, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.peers {
		if s.peers[i].Address == a {
			s.peers[i].State = StateDown
			if ok {
				s.peers[i].State = StateUp
			}
		}
	}
}

// snapshot returns the epoch and a copy of its peers.
func (s *sweepEpoch) snapshot() (int64, []MeshPeer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, append([]MeshPeer(nil), s.peers...)
}
