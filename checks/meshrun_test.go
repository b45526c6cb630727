package checks

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// meshProber records every probe: when, where, from whom, and how many ran
// at once.
type meshProber struct {
	mu       sync.Mutex
	probes   []probe.Target
	starts   []time.Time
	inflight atomic.Int64
	peak     atomic.Int64
	hold     time.Duration // how long each probe takes
}

func (p *meshProber) probe(ctx context.Context, t probe.Target) probe.Result {
	n := p.inflight.Add(1)
	defer p.inflight.Add(-1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			break
		}
	}
	p.mu.Lock()
	p.probes = append(p.probes, t)
	p.starts = append(p.starts, time.Now())
	p.mu.Unlock()
	if p.hold > 0 {
		select { // a probe that takes this long, not a wait for a signal
		case <-time.After(p.hold):
		case <-ctx.Done():
		}
	}
	return probe.Result{Success: true, Start: time.Now(), Message: "ok", Peer: t.Address}
}

func (p *meshProber) targets() []probe.Target {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.probes)
}

func loopbackMembers(n int) ([]netip.Addr, []string) {
	var ips []netip.Addr
	var strs []string
	for i := range n {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
		ips, strs = append(ips, a), append(strs, a.String())
	}
	return ips, strs
}

// meshCheck is a sweep mesh check on name whose probes spread over 10ms.
func meshCheck(name string) config.Check {
	c := schedCheck("mesh", 100*time.Millisecond)
	c.Target, c.Timeout = name+":9", 90*time.Millisecond
	c.Peers = mesh.Plan{Mode: mesh.ModeSweep, K: 2, Sweep: 3, Epoch: time.Hour}
	return c
}

// runMeshOnce applies c and runs it once, returning when its probes ended.
func runMeshOnce(h *harness, c config.Check) {
	h.apply(c)
	h.r.execute(context.Background(), h.r.snapshot()[0], time.Now())
}

func TestMeshRunProbesRingAndSweep(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(8)
	d := startPeerDNS(t, name, strs...)
	p := &meshProber{hold: 20 * time.Millisecond}
	self := mesh.Identity{Addrs: []netip.Addr{ips[2]}, Node: "node-a"}
	h := newHarness(t, func(s *Settings) { s.MeshIdentity, s.MaxConcurrent = self, 2 }, p.probe)
	h.r.resolver = d.resolver()
	c := meshCheck(name)
	runMeshOnce(h, c)

	epoch := mesh.EpochAt(time.Now(), time.Hour)
	want := mesh.NewView(ips, ips[2]).Peers(c.Peers, epoch)
	var got []mesh.Peer
	for _, tg := range p.targets() {
		if tg.MeshFrom != "node-a/127.0.0.4" {
			t.Errorf("probe of %v sent from %q, want node-a/127.0.0.4", tg.Address, tg.MeshFrom)
		}
		got = append(got, mesh.Peer{Addr: tg.Address.Addr()})
	}
	for i := range want {
		want[i].Role = 0
	}
	sortPeers := func(ps []mesh.Peer) { slices.SortFunc(ps, func(a, b mesh.Peer) int { return a.Addr.Compare(b.Addr) }) }
	sortPeers(got)
	sortPeers(want)
	if !slices.Equal(got, want) {
		t.Fatalf("probed %v, want ring + sweep %v", got, want)
	}
	if peak := p.peak.Load(); peak > 2 {
		t.Errorf("%d probes in flight at once, max-concurrent-checks is 2", peak)
	}

	rm := h.metrics()
	base := seriesAttrs("mesh", "tcp", name, "9")
	ringPts := []metricdata.DataPoint[int64]{point(1, base...)}
	for _, q := range mesh.NewView(ips, ips[2]).Peers(mesh.Plan{Mode: mesh.ModeRing, K: 2}, 0) {
		ringPts = append(ringPts, point(1, append(slices.Clip(base), attrMeshPeer.String(q.Addr.String()), attrMeshRole.String("ring"))...))
	}
	ringPts = append(ringPts, point(1, append(slices.Clip(base), attrMeshRole.String("sweep"))...))
	assertGauge(t, rm, "probe.success", ringPts...)
	ring := mesh.NewRing(ips)
	assertGauge(t, rm, "probe.mesh.members", point(8, base...))
	assertGauge(t, rm, "probe.mesh.view.hash", point(int64(ring.Hash()), base...))

	var roles []string
	var wantSweep []MeshPeer
	for _, q := range mesh.NewView(ips, ips[2]).Peers(c.Peers, epoch) {
		if q.Role == mesh.RoleSweep {
			wantSweep = append(wantSweep, MeshPeer{Address: netip.AddrPortFrom(q.Addr, 9), State: StateUp})
		}
	}
	// Its watchers are the members whose own views place it among their ring peers.
	var watchers []netip.AddrPort
	for _, m := range ips {
		if slices.Contains(mesh.NewView(ips, m).Peers(c.Peers, epoch), mesh.Peer{Addr: ips[2], Role: mesh.RoleRing}) {
			watchers = append(watchers, netip.AddrPortFrom(m, 9))
		}
	}
	if len(watchers) != 2 {
		t.Fatalf("%d members have %v as a ring peer, want k=2", len(watchers), ips[2])
	}
	if m := h.r.Status()[0].Mesh; m == nil || !reflect.DeepEqual(*m, MeshStatus{Mode: "sweep", Members: 8, ViewHash: ring.Hash(),
		Self: "127.0.0.4", Counted: true, Epoch: epoch, SweepPeers: wantSweep, RingWatchers: m.RingWatchers}) ||
		!sameAddrs(m.RingWatchers, watchers) {
		t.Errorf("status mesh %+v, want its %d sweep peers of epoch %d up and ring watchers %v", m, len(wantSweep), epoch, watchers)
	}
	_, body := get(t, h.r.StatusHandler(), "/status", "")
	if err := validate(t, statusSchema(t), []byte(body)); err != nil {
		t.Errorf("mesh /status does not match status.schema.json: %v\n%s", err, body)
	}
	for _, want := range []string{`"mesh": {`, `"role": "ring"`, `"role": "sweep"`, `"sweep_peers"`, `"ring_watchers"`} {
		if !strings.Contains(body, want) {
			t.Errorf("mesh /status lacks %s, so the schema test did not cover it", want)
		}
	}
	_, page := get(t, h.r.StatusHandler(), "/status", "text/html")
	wantPage := []string{"sweep mesh: 8 members, self 127.0.0.4, view " + fmt.Sprint(ring.Hash()), `<span class="role">ring peer</span>`, `<span class="role">sweep, last peer probed</span>`}
	for _, sp := range wantSweep {
		wantPage = append(wantPage, `<code class="up" title="up">`+sp.Address.String()+"</code>")
	}
	for _, want := range wantPage {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	for _, cs := range h.r.Status() {
		for _, a := range cs.Addresses {
			roles = append(roles, fmt.Sprintf("%s:%v", a.Role, a.Address.IsValid()))
		}
	}
	if fmt.Sprint(roles) != "[ring:true ring:true sweep:true]" {
		t.Errorf("status series %v, want two ring peers and the sweep (naming its last peer)", roles)
	}
}

// sameAddrs reports whether a and b hold the same addresses in any order.
func sameAddrs(a, b []netip.AddrPort) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, netip.AddrPort.Compare)
	slices.SortFunc(b, netip.AddrPort.Compare)
	return slices.Equal(a, b)
}

func TestMeshRunOutsideTheAnswer(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(8)
	d := startPeerDNS(t, name, strs...)
	p := &meshProber{}
	outsider := netip.MustParseAddr("127.0.0.99")
	h := newHarness(t, func(s *Settings) { s.MeshIdentity = mesh.Identity{Addrs: []netip.Addr{outsider}} }, p.probe)
	h.r.resolver = d.resolver()
	runMeshOnce(h, meshCheck(name))
	if n := len(p.targets()); n != 5 {
		t.Fatalf("%d probes, want 2 ring + 3 sweep", n)
	}
	for _, tg := range p.targets() {
		if tg.Address.Addr() == outsider || !slices.Contains(ips, tg.Address.Addr()) {
			t.Fatalf("probed %v, not a member", tg.Address)
		}
	}
	// Not counted: the gauges describe the answer alone.
	assertGauge(t, h.metrics(), "probe.mesh.members", point(8, seriesAttrs("mesh", "tcp", name, "9")...))
}

func TestMeshRunSpreadsProbes(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(8)
	d := startPeerDNS(t, name, strs...)
	p := &meshProber{}
	h := newHarness(t, func(s *Settings) { s.MeshIdentity = mesh.Identity{Addrs: []netip.Addr{ips[0]}} }, p.probe)
	h.r.resolver = d.resolver()
	c := meshCheck(name)
	// The window is interval − timeout = 400ms: five probes start at least
	// 80ms apart (timers never fire early), the last 320ms or more after the run.
	c.Interval, c.Timeout = 500*time.Millisecond, 100*time.Millisecond
	start := time.Now()
	runMeshOnce(h, c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if last := p.starts[4].Sub(start); last < 320*time.Millisecond {
		t.Fatalf("fifth probe started %v after the run, want at least 320ms (spread over the interval)", last)
	}
}

func TestRunOnceMesh(t *testing.T) {
	ips, strs := loopbackMembers(6)
	d := startPeerDNS(t, "peers.heartbeat.test", strs...)
	p := &meshProber{}
	h := newHarness(t, func(s *Settings) { s.MeshIdentity = mesh.Identity{Addrs: []netip.Addr{ips[0]}} }, p.probe)
	h.r.resolver = d.resolver()
	c := meshCheck("peers.heartbeat.test")
	c.Peers.Sweep = 2
	c.ApplyDefaults()
	var out bytes.Buffer
	if !h.r.runOnce(context.Background(), &config.File{Checks: []config.Check{c}}, &out) {
		t.Fatalf("runOnce failed:\n%s", out.String())
	}
	// Two ring lines (by address), then the sweep's: the last sweep peer.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || len(p.targets()) != 4 {
		t.Fatalf("%d probes, lines:\n%s", len(p.targets()), out.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "mesh peers.heartbeat.test:9 [127.0.0.") {
			t.Errorf("line %q does not name its peer", l)
		}
	}
}

func TestMeshSweepFailureNamesThePeer(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(8)
	d := startPeerDNS(t, name, strs...)
	self := ips[0]
	c := meshCheck(name)
	view := mesh.NewView(ips, self)
	sweep := view.Peers(c.Peers, mesh.EpochAt(time.Now(), c.Peers.Epoch))[2:]
	bad := sweep[len(sweep)-1].Addr // probed last: the sweep series ends down on it
	fail := func(ctx context.Context, t probe.Target) probe.Result {
		if t.Address.Addr() == bad {
			return probe.Result{ErrorType: probe.ErrConnectionRefused, Reason: "connection refused", Peer: t.Address}
		}
		return probe.Result{Success: true, Message: "ok", Peer: t.Address}
	}
	h := newHarness(t, func(s *Settings) { s.MeshIdentity = mesh.Identity{Addrs: []netip.Addr{self}} }, fail)
	h.r.resolver = d.resolver()
	c.Interval, c.Timeout = 500*time.Millisecond, 100*time.Millisecond // spread: the bad peer is probed last
	runMeshOnce(h, c)
	recs := h.logs.records()
	if len(recs) != 1 {
		t.Fatalf("%d log records, want one down record for the sweep series", len(recs))
	}
	var peer string
	recs[0].WalkAttributes(func(kv attribute.KeyValue) bool {
		if kv.Key == attrMeshPeer {
			peer = kv.Value.AsString()
		}
		return true
	})
	if peer != bad.String() || !strings.Contains(recs[0].Body().AsString(), "address="+bad.String()) {
		t.Fatalf("down record names peer %q, body %q; want %v", peer, recs[0].Body().AsString(), bad)
	}
	// The shared series cannot say which sweep peer failed; sweep_peers does.
	m := h.r.Status()[0].Mesh
	if m == nil || len(m.SweepPeers) != len(sweep) {
		t.Fatalf("status mesh %+v, want %d sweep peers", m, len(sweep))
	}
	for _, sp := range m.SweepPeers {
		if want := map[bool]State{true: StateDown, false: StateUp}[sp.Address.Addr() == bad]; sp.State != want {
			t.Errorf("sweep peer %v is %v, want %v", sp.Address, sp.State, want)
		}
	}
}

func TestMeshRunKeepsProbingThroughADNSOutage(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(8)
	d := startPeerDNS(t, name, strs...)
	p := &meshProber{}
	h := newHarness(t, func(s *Settings) { s.MeshIdentity = mesh.Identity{Addrs: []netip.Addr{ips[0]}} }, p.probe)
	h.r.resolver = d.resolver()
	c := meshCheck(name)
	runMeshOnce(h, c)
	d.set() // the name now resolves to nothing
	h.r.execute(context.Background(), h.r.snapshot()[0], time.Now())
	got := p.targets()
	if len(got) != 10 {
		t.Fatalf("%d probes over two runs, want 5 each (the second from the last view)", len(got))
	}
	addrsOf := func(ts []probe.Target) []netip.AddrPort {
		out := make([]netip.AddrPort, len(ts))
		for i, tg := range ts {
			out[i] = tg.Address
		}
		slices.SortFunc(out, netip.AddrPort.Compare)
		return out
	}
	if first, second := addrsOf(got[:5]), addrsOf(got[5:]); !slices.Equal(first, second) {
		t.Fatalf("second run probed %v, first %v", second, first)
	}
	if st := h.status("mesh"); st.LastSuccess || st.LastErrorType != probe.ErrDNS {
		t.Fatalf("resolution series: success %v error.type %q, want the dns failure recorded", st.LastSuccess, st.LastErrorType)
	}
}

func TestMeshRunThroughputOneAtATime(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(8)
	d := startPeerDNS(t, name, strs...)
	p := &meshProber{hold: 20 * time.Millisecond}
	h := newHarness(t, func(s *Settings) { s.MeshIdentity, s.MaxConcurrent = mesh.Identity{Addrs: []netip.Addr{ips[0]}}, 8 }, p.probe)
	h.r.resolver = d.resolver()
	c := meshCheck(name)
	c.Type, c.Target = config.TypeThroughput, "http://"+name+":9"
	runMeshOnce(h, c)
	if n := len(p.targets()); n != 5 {
		t.Fatalf("%d transfers, want 2 ring + 3 sweep", n)
	}
	if peak := p.peak.Load(); peak != 1 {
		t.Fatalf("%d throughput transfers at once, want one at a time", peak)
	}
}
