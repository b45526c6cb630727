package mesh

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"
)

// Ring is the members of one DNS answer in ring order. Every sidecar that
// got the same answer builds the same Ring; it is immutable and safe to share.
type Ring struct {
	members []netip.Addr // unmapped, sorted by address, without duplicates
	nodes   []node       // the same members in ring order
	hash    uint32       // of members
}

// node is a member with its ring position.
type node struct {
	pos  uint64
	addr netip.Addr
}

// Position is a member's place on the ring: the first 8 bytes of SHA-256 of
// its address. The ring key is the address because it is the only identity
// every sidecar can compute for every other from the DNS answer alone; a
// container restart keeps the pod and its address, so it moves nothing, and
// a replaced pod is one leave and one join.
func Position(a netip.Addr) uint64 {
	b := a.Unmap().AsSlice()
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8])
}

// NewRing places the members of answer (any order and address form,
// duplicates allowed) on the ring.
func NewRing(answer []netip.Addr) *Ring {
	members := make([]netip.Addr, len(answer))
	for i, a := range answer {
		members[i] = a.Unmap()
	}
	slices.SortFunc(members, netip.Addr.Compare)
	members = slices.Compact(members)
	r := &Ring{members: members, nodes: make([]node, len(members)), hash: viewHash(members)}
	for i, a := range members {
		r.nodes[i] = node{Position(a), a}
	}
	slices.SortFunc(r.nodes, compareNodes)
	return r
}

// compareNodes orders the ring; equal positions (never seen in practice)
// fall back to the address so every sidecar still agrees.
func compareNodes(a, b node) int {
	if c := cmp.Compare(a.pos, b.pos); c != 0 {
		return c
	}
	return a.addr.Compare(b.addr)
}

// viewHash is FNV-1a (32 bit) over the sorted addresses, each written as its
// text form and a newline. The exact bytes are fixed: sidecars of different
// versions in one mesh must report equal hashes for equal views.
func viewHash(members []netip.Addr) uint32 {
	h := fnv.New32a()
	var buf []byte
	for _, a := range members {
		buf = a.AppendTo(buf[:0])
		buf = append(buf, '\n')
		h.Write(buf)
	}
	return h.Sum32()
}

// Members is how many distinct members the answer held.
func (r *Ring) Members() int { return len(r.members) }

// Hash identifies the member list: sidecars whose hashes differ disagree on
// who is in the mesh.
func (r *Ring) Hash() uint32 { return r.hash }

// View is the ring as one member sees it. A self that is not in the answer
// (a pod not ready yet) still gets successors, from the place its address
// would take, but is not counted: Members and Hash describe the answer only,
// so every sidecar that got the same answer reports the same figures.
type View struct {
	*Ring
	self    netip.Addr
	counted bool // self is in the answer
	base    int  // index in nodes that offset 0 (self) stands for
	others  int  // members other than self
}

// NewView is NewRing(answer).View(self).
func NewView(answer []netip.Addr, self netip.Addr) *View { return NewRing(answer).View(self) }

// View places self on the ring.
func (r *Ring) View(self netip.Addr) *View {
	self = self.Unmap()
	v := &View{Ring: r, self: self, others: len(r.nodes)}
	i, found := slices.BinarySearchFunc(r.nodes, node{Position(self), self}, compareNodes)
	if found {
		v.counted, v.base, v.others = true, i, len(r.nodes)-1
	} else {
		v.base = i - 1 // offset 1 is the first member past self's place
	}
	return v
}

// Counted reports whether self is in the answer.
func (v *View) Counted() bool { return v.counted }

// Self is the address the view was built for.
func (v *View) Self() netip.Addr { return v.self }

// at is the member at ring offset d (1 ≤ d ≤ others) from self.
func (v *View) at(d int64) netip.Addr {
	n := int64(len(v.nodes))
	return v.nodes[mod(int64(v.base)+d, n)].addr
}

// Peer is one member to probe, and why.
type Peer struct {
	Addr netip.Addr
	Role Role
}

// Peers is whom self probes under p in the given sweep epoch: first the ring
// successors in ring order, then the epoch's rotating peers. Self is never
// among them, and no member appears twice.
//
// The sweep uses offsets on the ring: with N' other members, ring offsets
// 1…K and M = N'−K offsets left, epoch e probes offsets K+1+((e·S+j) mod M)
// for j < S = min(Sweep, M). Every member applies the same offsets, so the
// probe graph of an epoch is circulant: each member is the target of exactly
// S of them. Consecutive epochs take consecutive windows of offsets, so any
// ⌈M/S⌉ epochs in a row cover all M.
func (v *View) Peers(p Plan, epoch int64) []Peer { return v.AppendPeers(nil, p, epoch) }

// AppendPeers is Peers appending to out, so a caller running every interval
// can reuse one slice.
func (v *View) AppendPeers(out []Peer, p Plan, epoch int64) []Peer {
	n := v.others
	if p.Mode == ModeAll {
		out = slices.Grow(out, n)
		for _, a := range v.members {
			if a != v.self {
				out = append(out, Peer{a, RoleAll})
			}
		}
		return out
	}
	k := min(p.K, n)
	s := 0
	if p.Mode == ModeSweep {
		s = min(p.Sweep, n-k)
	}
	out = slices.Grow(out, k+s)
	for d := 1; d <= k; d++ {
		out = append(out, Peer{v.at(int64(d)), RoleRing})
	}
	if s > 0 {
		m := int64(n - k)
		first := mod(mod(epoch, m)*int64(s), m)
		for j := range int64(s) {
			out = append(out, Peer{v.at(int64(k) + 1 + (first+j)%m), RoleSweep})
		}
	}
	return out
}

// mod is the non-negative remainder.
func mod(a, m int64) int64 {
	r := a % m
	if r < 0 {
		r += m
	}
	return r
}

// Addrs is a copy of the members in address order.
func (r *Ring) Addrs() []netip.Addr { return slices.Clone(r.members) }

// Watchers is who probes self as a ring peer under p: the ring predecessors
// whose successors include self, nearest first. A self outside the answer
// has none, since no other member places it on the ring; mode all has every
// other member.
func (v *View) Watchers(p Plan) []netip.Addr {
	if p.Mode == ModeAll {
		out := make([]netip.Addr, 0, v.others)
		for _, a := range v.members {
			if a != v.self {
				out = append(out, a)
			}
		}
		return out
	}
	if !v.counted {
		return nil
	}
	k := min(p.K, v.others)
	out := make([]netip.Addr, 0, k)
	for d := 1; d <= k; d++ {
		out = append(out, v.at(int64(-d)))
	}
	return out
}
