package mesh

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"hash/fnv"
	"net/netip"
	"slices"
)

// View is one sidecar's picture of the mesh: the members from one DNS
// answer, placed on the ring, and where the sidecar itself sits. It is
// immutable and safe to share.
type View struct {
	members []netip.Addr // the answer: unmapped, sorted, without duplicates
	others  []node       // members other than self, in ring order
	self    netip.Addr
	counted bool   // self is in the answer
	start   int    // index in others of self's first successor
	hash    uint32 // of members
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

// NewView builds the view of the members in answer (any order, duplicates
// allowed) as seen by self. A self that is not in the answer (a pod not
// ready yet) still gets successors, from the place its address would take,
// but is not counted: Members and Hash describe the answer only, so every
// sidecar that got the same answer reports the same figures.
func NewView(answer []netip.Addr, self netip.Addr) *View {
	self = self.Unmap()
	members := make([]netip.Addr, len(answer))
	for i, a := range answer {
		members[i] = a.Unmap()
	}
	slices.SortFunc(members, netip.Addr.Compare)
	members = slices.Compact(members)

	v := &View{members: members, self: self, hash: viewHash(members)}
	v.others = make([]node, 0, len(members))
	for _, a := range members {
		if a == self {
			v.counted = true
			continue
		}
		v.others = append(v.others, node{Position(a), a})
	}
	slices.SortFunc(v.others, compareNodes)
	me := node{Position(self), self}
	v.start, _ = slices.BinarySearchFunc(v.others, me, compareNodes)
	return v
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
func (v *View) Members() int { return len(v.members) }

// Hash identifies the member list: sidecars whose hashes differ disagree on
// who is in the mesh.
func (v *View) Hash() uint32 { return v.hash }

// Counted reports whether self is in the answer.
func (v *View) Counted() bool { return v.counted }

// Self is the address the view was built for.
func (v *View) Self() netip.Addr { return v.self }

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
func (v *View) Peers(p Plan, epoch int64) []Peer {
	n := len(v.others)
	if p.Mode == All {
		out := make([]Peer, 0, n)
		for _, a := range v.members {
			if a != v.self {
				out = append(out, Peer{a, RoleAll})
			}
		}
		return out
	}
	k := min(p.K, n)
	s := 0
	if p.Mode == Sweep {
		s = min(p.Sweep, n-k)
	}
	out := make([]Peer, 0, k+s)
	for j := range k {
		out = append(out, Peer{v.others[(v.start+j)%n].addr, RoleRing})
	}
	if s > 0 {
		m := int64(n - k)
		first := mod(mod(epoch, m)*int64(s), m)
		for j := range int64(s) {
			off := int64(k) + (first+j)%m
			out = append(out, Peer{v.others[(int64(v.start)+off)%int64(n)].addr, RoleSweep})
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
