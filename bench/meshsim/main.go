// Command meshsim simulates mesh peer selection over the real checks/mesh
// code for meshes of many sizes and prints, per mode, the probes each
// sidecar sends per interval, the in-degree per epoch, the time until every
// ordered pair was probed against the formula, the series per sidecar and
// the watcher churn when members are replaced. Beside them it prints a
// random-k selection re-drawn every interval, the way goldpinger's
// PING_NUMBER picks peers. It exits 1 when a goal is missed.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
)

func main() {
	sizes := flag.String("n", "10,100,1000,10000", "mesh sizes, comma-separated")
	k := flag.Int("k", 3, "ring successors")
	sweep := flag.Int("sweep", 8, "rotating peers per epoch")
	epoch := flag.Duration("epoch", time.Minute, "sweep epoch (the config default: twice the interval)")
	interval := flag.Duration("interval", 30*time.Second, "check interval")
	seed := flag.Uint64("seed", 1, "random seed for replacements and the random-k model")
	flag.Parse()

	var ns []int
	for _, f := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 1<<20 {
			fmt.Fprintf(os.Stderr, "meshsim: -n: bad size %q\n", f)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	plans := []mesh.Plan{
		{Mode: mesh.ModeAll},
		{Mode: mesh.ModeRing, K: *k},
		{Mode: mesh.ModeSweep, K: *k, Sweep: *sweep, Epoch: *epoch},
	}
	s := sim{interval: *interval, epoch: *epoch, rng: rand.New(rand.NewPCG(*seed, 0x6d657368))}
	fmt.Printf("mesh peer selection (checks/mesh), interval %v, epoch %v, ring k=%d, sweep %d\n\n", *interval, *epoch, *k, *sweep)
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tmode\tprobes/sidecar/interval\tin-degree/epoch min..max\tall pairs covered after\tformula\tseries/sidecar\tchurn 1%\tchurn 10%\tgoals\t")
	failed := false
	for _, n := range ns {
		for _, p := range plans {
			r := s.run(n, p)
			fmt.Fprintln(tw, r.line())
			failed = failed || len(r.misses) > 0
		}
		fmt.Fprintln(tw, s.random(n, *k).line())
	}
	tw.Flush()
	s.cost(ns[len(ns)-1], plans[2])
	fmt.Println()
	fmt.Println("churn: share of the new watcher assignments (watcher → peer with a per-peer series) that did not exist before, ×: that share over the share of members replaced")
	fmt.Println("random k: a model of goldpinger's PING_NUMBER (each sidecar draws k peers uniformly every interval), run here beside the real selection;")
	fmt.Println("  unwatched = members nobody probes in a draw (median of an hour of draws), series = distinct peers a sidecar labelled within an hour")
	if failed {
		fmt.Println("GOALS MISSED")
		os.Exit(1)
	}
	fmt.Println("all goals met: probes = min(k + sweep, N−1) at every N, in-degree min = max, coverage = formula, churn proportional to the members replaced")
}

// sim holds the simulation's settings.
type sim struct {
	interval, epoch time.Duration
	rng             *rand.Rand
}

// row is one printed line.
type row struct {
	n                int
	mode             string
	probes, deg      [2]int // min, max
	covered, formula string
	series           int
	churn1, churn10  string
	misses           []string
	extraOK          string
}

func (r row) line() string {
	goals := "ok"
	if len(r.misses) > 0 {
		goals = "MISSED: " + strings.Join(r.misses, ", ")
	}
	if r.extraOK != "" {
		goals = r.extraOK
	}
	return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t", r.n, r.mode, span(r.probes), span(r.deg),
		r.covered, r.formula, r.series, r.churn1, r.churn10, goals)
}

func span(v [2]int) string {
	if v[0] == v[1] {
		return strconv.Itoa(v[0])
	}
	return fmt.Sprintf("%d..%d", v[0], v[1])
}

// addr is member i's address: 10.0.0.0/8 for the original members, so a
// member's index is its address minus the base.
func addr(i int) netip.Addr {
	u := uint32(10<<24 + i + 1)
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)})
}

func index(a netip.Addr) int {
	b := a.As4()
	return int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) - 10<<24 - 1
}

func answer(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = addr(i)
	}
	return out
}

func modeName(p mesh.Plan) string {
	switch p.Mode {
	case mesh.ModeRing:
		return fmt.Sprintf("ring k=%d", p.K)
	case mesh.ModeSweep:
		return fmt.Sprintf("ring k=%d + sweep %d", p.K, p.Sweep)
	}
	return p.Mode.String()
}

// run simulates one mode at one size from a random epoch onwards.
func (s *sim) run(n int, p mesh.Plan) row {
	r := row{n: n, mode: modeName(p)}
	ring := mesh.NewRing(answer(n))
	views := make([]*mesh.View, n)
	for i := range views {
		views[i] = ring.View(addr(i))
	}
	want := s.epochsWanted(n, p)
	e := s.walk(views, p, want)
	r.probes, r.deg, r.series = e.probes, e.deg, e.series
	r.covered, r.formula = s.coverage(n, p, e), s.formula(n, p)
	ch1, x1 := s.churn(n, p, 0.01)
	ch10, x10 := s.churn(n, p, 0.10)
	r.churn1, r.churn10 = fmt.Sprintf("%.2f%% (%.1f×)", 100*ch1, x1), fmt.Sprintf("%.1f%% (%.1f×)", 100*ch10, x10)
	r.misses = s.check(n, p, e, want, [2]float64{x1, x10})
	return r
}

// epochsWanted is how many epochs to simulate: the formula's coverage time
// for a sweep, one epoch for the modes that do not rotate (plus two more to
// show they do not).
func (s *sim) epochsWanted(n int, p mesh.Plan) int {
	switch p.Mode {
	case mesh.ModeSweep:
		return max(mesh.CoverageEpochs(n, p.K, p.Sweep), 1)
	case mesh.ModeRing:
		return 3
	}
	return 1
}

// walked is what the epochs showed.
type walked struct {
	probes, deg [2]int
	series      int
	coveredAt   int // epochs until every ordered pair was probed; 0 if never
	epochs      int
}

// walk runs up to want+2 epochs (stopping once every pair is covered and
// want epochs ran) and measures fan-out, in-degree, coverage and series.
func (s *sim) walk(views []*mesh.View, p mesh.Plan, want int) walked {
	n := len(views)
	w := walked{probes: [2]int{1 << 30, -1}, deg: [2]int{1 << 30, -1}}
	cov := newBitmap(n)
	deg := make([]int, n)
	series := newSeriesTracker(n)
	start := mesh.EpochAt(time.Now(), s.epoch)
	var buf []mesh.Peer
	for e := range want + 2 {
		clear(deg)
		for i, v := range views {
			buf = v.AppendPeers(buf[:0], p, start+int64(e))
			w.probes = widen(w.probes, len(buf))
			for _, q := range buf {
				j := index(q.Addr)
				deg[j]++
				cov.set(i, j)
			}
			series.observe(i, e, buf, func() []mesh.Peer { return v.Peers(p, start) })
		}
		for _, d := range deg {
			w.deg = widen(w.deg, d)
		}
		w.epochs = e + 1
		if w.coveredAt == 0 && cov.count == n*(n-1) {
			w.coveredAt = e + 1
		}
		if w.coveredAt != 0 && e+1 >= want {
			break
		}
	}
	w.series = series.max()
	return w
}

func widen(v [2]int, x int) [2]int { return [2]int{min(v[0], x), max(v[1], x)} }

// bitmap marks ordered pairs (i probed j).
type bitmap struct {
	n     int
	bits  []uint64
	count int
}

func newBitmap(n int) *bitmap { return &bitmap{n: n, bits: make([]uint64, (n*n+63)/64)} }

func (b *bitmap) set(i, j int) {
	x := i*b.n + j
	if m := uint64(1) << (x % 64); b.bits[x/64]&m == 0 {
		b.bits[x/64] |= m
		b.count++
	}
}

// seriesTracker counts, per sidecar, the distinct metric series its results
// would need over all epochs: one per labelled peer, one for all unlabelled.
// It keeps only counts and the peers beyond the first epoch's, which it
// recomputes, so mode all at 10,000 members does not hold N² addresses.
type seriesTracker struct {
	first     []int // labelled peers in the first epoch
	extra     []map[netip.Addr]bool
	unlabeled []bool
}

func newSeriesTracker(n int) *seriesTracker {
	return &seriesTracker{first: make([]int, n), extra: make([]map[netip.Addr]bool, n), unlabeled: make([]bool, n)}
}

// observe records sidecar i's peers of epoch e; first gives its peers of
// the first epoch.
func (t *seriesTracker) observe(i, e int, peers []mesh.Peer, first func() []mesh.Peer) {
	now := labelled(peers)
	if len(now) < len(peers) {
		t.unlabeled[i] = true
	}
	if e == 0 {
		t.first[i] = len(now)
		return
	}
	was := labelled(first())
	for _, a := range now {
		if _, ok := slices.BinarySearchFunc(was, a, netip.Addr.Compare); !ok {
			if t.extra[i] == nil {
				t.extra[i] = map[netip.Addr]bool{}
			}
			t.extra[i][a] = true
		}
	}
}

func (t *seriesTracker) max() int {
	m := 0
	for i := range t.first {
		c := t.first[i] + len(t.extra[i])
		if t.unlabeled[i] {
			c++
		}
		m = max(m, c)
	}
	return m
}

// coverage prints the measured time until every ordered pair was probed.
func (s *sim) coverage(n int, p mesh.Plan, w walked) string {
	if w.coveredAt == 0 {
		return "never"
	}
	if p.Mode != mesh.ModeSweep || w.coveredAt == 1 {
		return fmt.Sprintf("1 interval (%v)", s.interval)
	}
	return fmt.Sprintf("%d epochs (%v)", w.coveredAt, time.Duration(w.coveredAt)*s.epoch)
}

// formula prints T = epoch × ⌈(N−1−k)/sweep⌉ (or what the mode implies).
func (s *sim) formula(n int, p mesh.Plan) string {
	switch {
	case p.Mode == mesh.ModeAll || n-1 <= p.K:
		return fmt.Sprintf("1 interval (%v)", s.interval)
	case p.Mode == mesh.ModeRing:
		return "never"
	}
	c := mesh.CoverageEpochs(n, p.K, p.Sweep)
	if c == 1 {
		return fmt.Sprintf("1 interval (%v)", s.interval)
	}
	return fmt.Sprintf("%d epochs (%v)", c, time.Duration(c)*s.epoch)
}

// check lists the goals a row misses.
func (s *sim) check(n int, p mesh.Plan, w walked, want int, ratio [2]float64) []string {
	var miss []string
	fan := n - 1
	switch p.Mode {
	case mesh.ModeRing:
		fan = min(p.K, n-1)
	case mesh.ModeSweep:
		fan = min(p.K+p.Sweep, n-1)
	}
	if w.probes != [2]int{fan, fan} {
		miss = append(miss, fmt.Sprintf("probes %v, want %d", w.probes, fan))
	}
	if w.deg != [2]int{fan, fan} {
		miss = append(miss, fmt.Sprintf("in-degree %v, want %d", w.deg, fan))
	}
	if s.coverage(n, p, w) != s.formula(n, p) || (p.Mode == mesh.ModeSweep && w.coveredAt != want) {
		miss = append(miss, "coverage differs from the formula")
	}
	bound := 3.0 // a replacement changes at most 3k of the N·k ring assignments
	if p.Mode == mesh.ModeAll {
		bound = 2.0
	}
	for _, x := range ratio {
		if x <= 0 || x > bound {
			miss = append(miss, fmt.Sprintf("churn %.1f× the replaced share (bound %.0f×)", x, bound))
		}
	}
	return miss
}

// churn replaces a share of the members with new addresses and returns the
// share of labelled watcher assignments that are new, and its ratio to the
// share of members actually replaced.
func (s *sim) churn(n int, p mesh.Plan, share float64) (changed, ratio float64) {
	r := max(1, int(share*float64(n)+0.5))
	old := answer(n)
	next := slices.Clone(old)
	for i, j := range s.rng.Perm(n)[:r] {
		next[j] = netip.AddrFrom4([4]byte{11, byte(i >> 16), byte(i >> 8), byte(i)})
	}
	before, after := mesh.NewRing(old), mesh.NewRing(next)
	epoch := mesh.EpochAt(time.Now(), s.epoch)
	var total, fresh int
	inOld := make(map[netip.Addr]bool, n)
	for _, a := range old {
		inOld[a] = true
	}
	for _, w := range next {
		now := labelled(after.View(w).Peers(p, epoch))
		total += len(now)
		if !inOld[w] {
			fresh += len(now)
			continue
		}
		fresh += missing(now, labelled(before.View(w).Peers(p, epoch)))
	}
	changed = float64(fresh) / float64(total)
	return changed, changed / (float64(r) / float64(n))
}

// labelled is the sorted addresses of the peers with a per-peer series.
func labelled(ps []mesh.Peer) []netip.Addr {
	out := make([]netip.Addr, 0, len(ps))
	for _, q := range ps {
		if q.Role.Labelled() {
			out = append(out, q.Addr)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// missing counts the members of sorted a that sorted b lacks.
func missing(a, b []netip.Addr) int {
	n, j := 0, 0
	for _, x := range a {
		for j < len(b) && b[j].Compare(x) < 0 {
			j++
		}
		if j == len(b) || b[j] != x {
			n++
		}
	}
	return n
}

// random models a uniform random choice of k peers re-drawn every interval:
// its unwatched members, its series over an hour, its coverage time and its
// churn per re-draw with no member replaced.
func (s *sim) random(n, k int) row {
	k = min(k, n-1)
	r := row{n: n, mode: fmt.Sprintf("random k=%d", k), probes: [2]int{k, k}, deg: [2]int{1 << 30, -1}, formula: "-"}
	draws := int(time.Hour / s.interval)
	deg := make([]int, n)
	seen := make([]map[int]bool, n)
	var unwatched []float64
	prev, cur := make([][]int, n), make([][]int, n)
	var churned, assigned int
	for d := range draws {
		clear(deg)
		for i := range n {
			cur[i] = s.draw(cur[i][:0], i, n, k)
			for _, j := range cur[i] {
				deg[j]++
				if seen[i] == nil {
					seen[i] = map[int]bool{}
				}
				seen[i][j] = true
				if d > 0 && !slices.Contains(prev[i], j) {
					churned++
				}
			}
			if d > 0 {
				assigned += len(cur[i])
			}
		}
		zero := 0
		for _, x := range deg {
			r.deg = widen(r.deg, x)
			if x == 0 {
				zero++
			}
		}
		unwatched = append(unwatched, float64(zero)/float64(n))
		prev, cur = cur, prev
	}
	for _, m := range seen {
		r.series = max(r.series, len(m))
	}
	r.covered = s.randomCoverage(n, k)
	r.churn1 = fmt.Sprintf("%.0f%% per draw", 100*float64(churned)/float64(max(assigned, 1)))
	r.churn10 = r.churn1
	slices.Sort(unwatched)
	r.extraOK = fmt.Sprintf("model: %.1f%% unwatched per draw", 100*unwatched[len(unwatched)/2])
	return r
}

// draw appends k distinct random members other than i.
func (s *sim) draw(out []int, i, n, k int) []int {
	for len(out) < k {
		j := s.rng.IntN(n - 1)
		if j >= i {
			j++
		}
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out
}

// randomCoverage counts draws until every ordered pair was probed; only for
// meshes small enough to finish quickly.
func (s *sim) randomCoverage(n, k int) string {
	if n > 1000 {
		return "not simulated"
	}
	cov := newBitmap(n)
	var buf []int
	for d := 1; d <= 1_000_000; d++ {
		for i := range n {
			buf = s.draw(buf[:0], i, n, k)
			for _, j := range buf {
				cov.set(i, j)
			}
		}
		if cov.count == n*(n-1) {
			return fmt.Sprintf("%d intervals (%v)", d, time.Duration(d)*s.interval)
		}
	}
	return "not within 1e6 draws"
}

// cost prints what one resolution and one run cost a sidecar: building the
// ring and its view, and picking the peers (medians of 9).
func (s *sim) cost(n int, p mesh.Plan) {
	a := answer(n)
	build, pick := make([]time.Duration, 9), make([]time.Duration, 9)
	var v *mesh.View
	for i := range build {
		t := time.Now()
		v = mesh.NewRing(a).View(addr(i))
		build[i] = time.Since(t)
		t = time.Now()
		const reps = 1000
		var buf []mesh.Peer
		for e := range int64(reps) {
			buf = v.AppendPeers(buf[:0], p, e)
		}
		pick[i] = time.Since(t) / reps
	}
	slices.Sort(build)
	slices.Sort(pick)
	fmt.Printf("\ncost per sidecar at N=%d: ring and view from one DNS answer %v, peers for one run %v (medians of 9)\n", n, build[4], pick[4])
}
