package mesh

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// members returns n distinct addresses, a mix of IPv4 and IPv6 so both
// forms go through the ring.
func members(n int, rng *rand.Rand) []netip.Addr {
	seen := map[netip.Addr]bool{}
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		var a netip.Addr
		if rng.IntN(4) == 0 {
			var b [16]byte
			b[0], b[1] = 0xfd, 0x00
			for i := 8; i < 16; i++ {
				b[i] = byte(rng.Uint32())
			}
			a = netip.AddrFrom16(b)
		} else {
			u := 10<<24 | rng.Uint32()&0xffffff
			a = netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
		}
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

func shuffled(list []netip.Addr, rng *rand.Rand) []netip.Addr {
	out := slices.Clone(list)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// peersOf is every member's peers, each computed from its own view of an
// independently shuffled answer, as separate sidecars would.
func peersOf(t *testing.T, answer []netip.Addr, p Plan, epoch int64, rng *rand.Rand) map[netip.Addr][]Peer {
	t.Helper()
	out := make(map[netip.Addr][]Peer, len(answer))
	for _, m := range answer {
		v := NewView(shuffled(answer, rng), m)
		if !v.Counted() {
			t.Fatalf("%v not counted in its own answer", m)
		}
		ps := v.Peers(p, epoch)
		seen := map[netip.Addr]bool{}
		for _, q := range ps {
			if q.Addr == m {
				t.Fatalf("%v probes itself: %v", m, ps)
			}
			if seen[q.Addr] {
				t.Fatalf("%v probes %v twice: %v", m, q.Addr, ps)
			}
			seen[q.Addr] = true
		}
		out[m] = ps
	}
	return out
}

// inDegree counts, per member and role, how many members probe it.
func inDegree(all map[netip.Addr][]Peer) map[Role]map[netip.Addr]int {
	deg := map[Role]map[netip.Addr]int{RoleRing: {}, RoleSweep: {}, RoleAll: {}}
	for _, ps := range all {
		for _, q := range ps {
			deg[q.Role][q.Addr]++
		}
	}
	return deg
}

func TestRingInDegreeExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1, 2, 3, 4, 5, 7, 16, 33, 257}
	for _, n := range sizes {
		for _, k := range []int{1, 2, 3, 5} {
			answer := members(n, rng)
			all := peersOf(t, answer, Plan{Mode: ModeRing, K: k}, 0, rng)
			want := min(k, n-1)
			deg := inDegree(all)[RoleRing]
			for _, m := range answer {
				if got := len(all[m]); got != want {
					t.Fatalf("n=%d k=%d: %v probes %d peers, want %d", n, k, m, got, want)
				}
				if deg[m] != want {
					t.Fatalf("n=%d k=%d: %v is watched by %d, want %d", n, k, m, deg[m], want)
				}
			}
		}
	}
}

func TestRingFollowsPositions(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	answer := members(50, rng)
	ring := slices.Clone(answer)
	slices.SortFunc(ring, func(a, b netip.Addr) int {
		pa, pb := Position(a), Position(b)
		if pa < pb {
			return -1
		}
		if pa > pb {
			return 1
		}
		return 0
	})
	for i, m := range ring {
		ps := NewView(answer, m).Peers(Plan{Mode: ModeRing, K: 3}, 0)
		for j, q := range ps {
			if want := ring[(i+1+j)%len(ring)]; q.Addr != want || q.Role != RoleRing {
				t.Fatalf("member %d successor %d = %v/%v, want %v/ring", i, j, q.Addr, q.Role, want)
			}
		}
	}
}

func TestSweepInDegreeExactEveryEpoch(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{2, 4, 5, 12, 13, 50, 101} {
		for _, s := range []int{1, 4, 8} {
			const k = 3
			answer := members(n, rng)
			p := Plan{Mode: ModeSweep, K: k, Sweep: s, Epoch: time.Minute}
			wantRing, wantSweep := min(k, n-1), min(s, max(n-1-k, 0))
			start := rng.Int64N(1<<40) - 1<<39
			for e := start; e < start+int64(2*CoverageEpochs(n, k, s)+2); e++ {
				all := peersOf(t, answer, p, e, rng)
				deg := inDegree(all)
				for _, m := range answer {
					if deg[RoleRing][m] != wantRing || deg[RoleSweep][m] != wantSweep {
						t.Fatalf("n=%d s=%d epoch %d: %v watched by %d ring + %d sweep, want %d + %d",
							n, s, e, m, deg[RoleRing][m], deg[RoleSweep][m], wantRing, wantSweep)
					}
					if got := len(all[m]); got != wantRing+wantSweep {
						t.Fatalf("n=%d s=%d: %v probes %d, want %d", n, s, m, got, wantRing+wantSweep)
					}
				}
			}
		}
	}
}

// TestSweepCoverage counts, from a random epoch, the epochs until every
// ordered pair was probed, and compares it with the formula.
func TestSweepCoverage(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	cases := []struct{ n, k, s int }{
		{5, 3, 8}, {12, 3, 8}, {12, 3, 1}, {37, 3, 8}, {37, 2, 5}, {100, 3, 8}, {211, 3, 8}, {64, 1, 7},
	}
	for _, c := range cases {
		answer := members(c.n, rng)
		p := Plan{Mode: ModeSweep, K: c.k, Sweep: c.s, Epoch: time.Minute}
		want := max(CoverageEpochs(c.n, c.k, c.s), 1) // the first epoch covers the ring
		views := make([]*View, c.n)
		for i, m := range answer {
			views[i] = NewView(answer, m)
		}
		covered := map[[2]netip.Addr]bool{}
		pairs := c.n * (c.n - 1)
		start := rng.Int64N(1 << 30)
		got := 0
		for e := start; len(covered) < pairs && got <= 2*want; e++ {
			got++
			for i, v := range views {
				for _, q := range v.Peers(p, e) {
					covered[[2]netip.Addr{answer[i], q.Addr}] = true
				}
			}
		}
		if got != want {
			t.Errorf("n=%d k=%d s=%d: every pair covered after %d epochs, formula says %d", c.n, c.k, c.s, got, want)
		}
	}
}

func TestRingDoesNotRotate(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	answer := members(40, rng)
	v := NewView(answer, answer[7])
	first := v.Peers(Plan{Mode: ModeRing, K: 3}, 0)
	for e := int64(1); e < 50; e++ {
		if got := v.Peers(Plan{Mode: ModeRing, K: 3}, e); !slices.Equal(got, first) {
			t.Fatalf("epoch %d ring peers %v, epoch 0 %v", e, got, first)
		}
	}
	// The sweep keeps the ring part and rotates the rest.
	a := v.Peers(Plan{Mode: ModeSweep, K: 3, Sweep: 4, Epoch: time.Minute}, 10)
	b := v.Peers(Plan{Mode: ModeSweep, K: 3, Sweep: 4, Epoch: time.Minute}, 11)
	if !slices.Equal(a[:3], first) || !slices.Equal(b[:3], first) {
		t.Fatalf("sweep ring part %v %v, ring %v", a[:3], b[:3], first)
	}
	if slices.Equal(a[3:], b[3:]) {
		t.Fatalf("sweep peers did not rotate: %v", a[3:])
	}
}

// changedWatchers counts the members in both answers whose ring peers differ.
func changedWatchers(before, after []netip.Addr, k int) int {
	n := 0
	for _, m := range after {
		if !slices.Contains(before, m) {
			continue
		}
		a := NewView(before, m).Peers(Plan{Mode: ModeRing, K: k}, 0)
		b := NewView(after, m).Peers(Plan{Mode: ModeRing, K: k}, 0)
		if !slices.Equal(a, b) {
			n++
		}
	}
	return n
}

func TestRingChurn(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const k = 3
	for trial := range 20 {
		all := members(201, rng)
		base, extra := all[:200], all[200]
		if got := changedWatchers(base, append(slices.Clone(base), extra), k); got != k {
			t.Fatalf("trial %d: a join changed %d members' ring peers, want %d", trial, got, k)
		}
		gone := rng.IntN(len(base))
		left := slices.Delete(slices.Clone(base), gone, gone+1)
		if got := changedWatchers(base, left, k); got != k {
			t.Fatalf("trial %d: a leave changed %d members' ring peers, want %d", trial, got, k)
		}
		replaced := append(slices.Clone(left), extra)
		if got := changedWatchers(base, replaced, k); got > 2*k {
			t.Fatalf("trial %d: a replacement changed %d members' ring peers, want at most %d", trial, got, 2*k)
		}
	}
}

func TestViewIndependentOfAnswerForm(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	answer := members(60, rng)
	self := answer[0]
	ref := NewView(answer, self)
	messy := shuffled(answer, rng)
	messy = append(messy, messy[:10]...) // duplicates, as a resolver may return
	for i, a := range messy {
		if a.Is4() && i%2 == 0 {
			messy[i] = netip.AddrFrom16(a.As16()) // IPv4-mapped form
		}
	}
	v := NewView(messy, netip.AddrFrom16(self.As16()))
	if v.Members() != 60 || v.Hash() != ref.Hash() || !v.Counted() {
		t.Fatalf("members %d hash %x counted %v; want 60 %x true", v.Members(), v.Hash(), v.Counted(), ref.Hash())
	}
	p := Plan{Mode: ModeSweep, K: 3, Sweep: 8, Epoch: time.Minute}
	if a, b := ref.Peers(p, 99), v.Peers(p, 99); !slices.Equal(a, b) {
		t.Fatalf("peers differ with the answer's order and form:\n%v\n%v", a, b)
	}
}

func TestViewHash(t *testing.T) {
	list := []netip.Addr{netip.MustParseAddr("fd00::1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")}
	// The documented byte form: sorted text addresses, each ending in "\n".
	h := fnv.New32a()
	h.Write([]byte("10.0.0.1\n10.0.0.2\nfd00::1\n"))
	v := NewView(list, list[0])
	if v.Hash() != h.Sum32() {
		t.Fatalf("hash %08x, want FNV-1a of the sorted list %08x", v.Hash(), h.Sum32())
	}
	if NewView(list[:2], list[0]).Hash() == v.Hash() {
		t.Fatal("hash unchanged after a member left")
	}
	// Self does not enter the hash: a sidecar outside the answer agrees.
	if o := NewView(list, netip.MustParseAddr("10.9.9.9")); o.Hash() != v.Hash() || o.Members() != 3 {
		t.Fatalf("outsider sees hash %08x members %d, want %08x 3", o.Hash(), o.Members(), v.Hash())
	}
}

func TestSelfMissingFromView(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	all := members(21, rng)
	self, answer := all[20], all[:20]
	v := NewView(answer, self)
	if v.Counted() || v.Members() != 20 || v.Self() != self {
		t.Fatalf("counted %v members %d self %v; want false 20 %v", v.Counted(), v.Members(), v.Self(), self)
	}
	// It probes the members it will follow once it is in the answer.
	joined := NewView(all, self)
	p := Plan{Mode: ModeRing, K: 3}
	if a, b := v.Peers(p, 0), joined.Peers(p, 0); !slices.Equal(a, b) {
		t.Fatalf("not-ready peers %v, peers once ready %v", a, b)
	}
	// It probes, but the counted members still see in-degree exactly k among themselves.
	deg := inDegree(peersOf(t, answer, p, 0, rng))[RoleRing]
	for _, m := range answer {
		if deg[m] != 3 {
			t.Fatalf("%v watched by %d counted members, want 3", m, deg[m])
		}
	}
	// A sweep from outside the answer covers every member in time.
	ps := Plan{Mode: ModeSweep, K: 3, Sweep: 5, Epoch: time.Minute}
	seen := map[netip.Addr]bool{}
	for e := range int64(CoverageEpochs(21, 3, 5)) {
		for _, q := range v.Peers(ps, e) {
			seen[q.Addr] = true
		}
	}
	if len(seen) != 20 {
		t.Fatalf("outsider's sweep reached %d of 20 members", len(seen))
	}
}

func TestSmallMesh(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	sweep := Plan{Mode: ModeSweep, K: 3, Sweep: 8, Epoch: time.Minute}
	cases := []struct {
		n, ring, sweep int
	}{
		{1, 0, 0}, {2, 1, 0}, {3, 2, 0}, {4, 3, 0}, {5, 3, 1}, {6, 3, 2}, {12, 3, 8}, {13, 3, 8},
	}
	for _, c := range cases {
		answer := members(c.n, rng)
		ps := NewView(answer, answer[0]).Peers(sweep, 5)
		var ring, sw int
		for _, q := range ps {
			if q.Role == RoleRing {
				ring++
			} else {
				sw++
			}
		}
		if ring != c.ring || sw != c.sweep {
			t.Errorf("n=%d: %d ring + %d sweep peers, want %d + %d", c.n, ring, sw, c.ring, c.sweep)
		}
	}
	if ps := NewView(nil, netip.MustParseAddr("10.0.0.1")).Peers(sweep, 0); len(ps) != 0 {
		t.Fatalf("empty answer gave peers %v", ps)
	}
}

func TestModeAll(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	answer := members(30, rng)
	ps := NewView(answer, answer[3]).Peers(Plan{Mode: ModeAll}, 0)
	want := slices.Clone(answer)
	want = slices.Delete(want, 3, 4)
	slices.SortFunc(want, netip.Addr.Compare)
	if len(ps) != 29 {
		t.Fatalf("%d peers, want 29", len(ps))
	}
	for i, q := range ps {
		if q.Addr != want[i] || q.Role != RoleAll {
			t.Fatalf("peer %d = %v/%v, want %v/all", i, q.Addr, q.Role, want[i])
		}
	}
	if ps := NewView(answer, netip.MustParseAddr("192.0.2.1")).Peers(Plan{Mode: ModeAll}, 0); len(ps) != 30 {
		t.Fatalf("outsider probes %d, want all 30", len(ps))
	}
}

// TestWatchersAreWhoProbesSelf: every member's watchers, from its own view,
// are exactly the members whose ring peers (from their own views) include it.
func TestWatchersAreWhoProbesSelf(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 2, 3, 6, 33} {
		for _, p := range []Plan{{Mode: ModeRing, K: 1}, {Mode: ModeRing, K: 3}, {Mode: ModeSweep, K: 2, Sweep: 2, Epoch: time.Minute}, {Mode: ModeAll}} {
			answer := members(n, rng)
			all := peersOf(t, answer, p, 7, rng)
			probedBy := map[netip.Addr][]netip.Addr{}
			for m, ps := range all {
				for _, q := range ps {
					if q.Role == RoleRing || q.Role == RoleAll {
						probedBy[q.Addr] = append(probedBy[q.Addr], m)
					}
				}
			}
			for _, m := range answer {
				got := NewView(shuffled(answer, rng), m).Watchers(p)
				want := probedBy[m]
				if len(got) != len(want) {
					t.Fatalf("n=%d %+v: %v has watchers %v, want %v", n, p, m, got, want)
				}
				for _, w := range got {
					if !slices.Contains(want, w) {
						t.Fatalf("n=%d %+v: %v has watcher %v, which does not probe it (%v)", n, p, m, w, want)
					}
				}
				if p.Mode != ModeAll && len(got) > 0 && !slices.Contains(all[got[0]], Peer{m, RoleRing}) {
					t.Fatalf("nearest watcher %v of %v does not list it", got[0], m)
				}
			}
		}
	}
	if w := NewView(members(4, rng), netip.MustParseAddr("192.0.2.1")).Watchers(Plan{Mode: ModeRing, K: 2}); w != nil {
		t.Errorf("a self outside the answer has watchers %v", w)
	}
}
