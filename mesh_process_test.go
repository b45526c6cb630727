//go:build linux

package main

// The mesh across real processes: 30 sidecars, each the real binary (this
// test binary re-executed as main) bound to its own loopback address
// 127.0.0.2 … 127.0.0.31, learn the members from an in-process DNS server
// that answers the headless name with those addresses, and export their
// metrics over OTLP to an in-process receiver.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// envRunMain makes the test binary run main() instead of the tests, so the
// multi-process tests start the real sidecar without a separate build.
const envRunMain = "HEARTBEAT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// headless is a DNS server answering one name with a changeable list of A
// records, as a cluster DNS answers a headless Service, over UDP (truncated
// to the client's EDNS0 size, so big answers go to TCP) and TCP.
type headless struct {
	name string // fully qualified
	mu   sync.Mutex
	set  []netip.Addr
	addr string
	srvs []*dns.Server
}

func startHeadless(t *testing.T, name string) *headless {
	t.Helper()
	h := &headless{name: dns.Fqdn(name)}
	var pc net.PacketConn
	var ln net.Listener
	for range 20 { // the TCP port must match the UDP one; a clash is rare
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ln, err = net.Listen("tcp", pc.LocalAddr().String()); err == nil {
			break
		}
		pc.Close()
		pc = nil
	}
	if pc == nil {
		t.Fatal("no UDP+TCP port pair for the DNS server")
	}
	h.addr = pc.LocalAddr().String()
	h.srvs = []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, s := range h.srvs {
		go func() { _ = s.ActivateAndServe() }()
	}
	t.Cleanup(func() {
		for _, s := range h.srvs {
			_ = s.Shutdown()
		}
	})
	return h
}

func (h *headless) setMembers(list []netip.Addr) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.set = slices.Clone(list)
}

func (h *headless) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 || !strings.EqualFold(req.Question[0].Name, h.name) {
		m.Rcode = dns.RcodeNameError
	} else if q := req.Question[0]; q.Qtype == dns.TypeA {
		h.mu.Lock()
		for _, a := range h.set {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   a.AsSlice(),
			})
		}
		h.mu.Unlock()
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if o := req.IsEdns0(); o != nil {
			size = int(o.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// sidecar is one heartbeat process.
type sidecar struct {
	ip   netip.Addr
	cmd  *exec.Cmd
	out  *testkit.Buffer // the child's output, for failure messages
	done chan struct{}
}

// meshLab is the DNS server, the OTLP receiver, the config and the sidecars.
type meshLab struct {
	t        *testing.T
	dns      *headless
	otlp     *otlptest.Receiver
	port     int
	config   string
	sidecars map[netip.Addr]*sidecar
}

func (l *meshLab) start(ip netip.Addr) *sidecar {
	l.t.Helper()
	bin, err := os.Executable()
	if err != nil {
		l.t.Fatal(err)
	}
	listen := netip.AddrPortFrom(ip, uint16(l.port)).String()
	cmd := exec.Command(bin, "serve", "--listen", listen, "--config", l.config,
		"--syslog-addr", "none", "--peers-resolver", l.dns.addr, "--shutdown-timeout", "1s")
	cmd.Env = append(os.Environ(), envRunMain+"=1",
		"POD_IP="+ip.String(), "NODE_NAME=node-"+ip.String(),
		"OTEL_METRIC_EXPORT_INTERVAL=300", "OTEL_BSP_SCHEDULE_DELAY=300", "OTEL_LOGS_EXPORTER=none",
		"OTEL_RESOURCE_ATTRIBUTES=k8s.namespace.name=meshlab,k8s.pod.name=pod-"+ip.String())
	cmd.Env = append(cmd.Env, l.otlp.Env()...)
	s := &sidecar{ip: ip, cmd: cmd, out: &testkit.Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	// Should the test binary itself be killed, its sidecars go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	l.sidecars[ip] = s
	l.t.Cleanup(func() { l.stop(s) })
	return s
}

// stop kills a sidecar outright, as a crashed node would go, and waits.
func (l *meshLab) stop(s *sidecar) {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// waitReady polls each sidecar's /readyz until it answers 200.
func (l *meshLab) waitReady(list []netip.Addr) {
	l.t.Helper()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	for _, ip := range list {
		url := fmt.Sprintf("http://%s/readyz", netip.AddrPortFrom(ip, uint16(l.port)))
		s := l.sidecars[ip]
		testkit.WaitFor(l.t, 30*time.Second, "sidecar "+ip.String()+" ready", func() (bool, string) {
			select {
			case <-s.done:
				l.t.Fatalf("sidecar %v exited:\n%s", ip, s.out)
			default:
			}
			resp, err := client.Get(url)
			if err != nil {
				return false, err.Error() + "\n" + s.out.String()
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK, resp.Status
		})
	}
}

// point is the latest value of one series.
type point struct {
	at  time.Time
	val float64
}

// seriesKey names a series: the sidecar's pod and the data point's attributes.
type seriesKey struct {
	pod, peer, role, check string
}

// latest scans what the receiver holds for the newest data point of every
// series of a gauge or sum.
func latest(r *otlptest.Receiver, name string) map[seriesKey]point {
	out := map[seriesKey]point{}
	for _, m := range r.Metrics() {
		if m.Name() != name {
			continue
		}
		podV, _ := m.Resource.Attributes().Get("k8s.pod.name")
		var dps pmetric.NumberDataPointSlice
		switch m.Type() {
		case pmetric.MetricTypeGauge:
			dps = m.Gauge().DataPoints()
		case pmetric.MetricTypeSum:
			dps = m.Sum().DataPoints()
		default:
			continue
		}
		for i := range dps.Len() {
			dp := dps.At(i)
			k := seriesKey{pod: podV.Str()}
			if v, ok := dp.Attributes().Get("heartbeat.mesh.peer"); ok {
				k.peer = v.Str()
			}
			if v, ok := dp.Attributes().Get("heartbeat.mesh.role"); ok {
				k.role = v.Str()
			}
			if v, ok := dp.Attributes().Get("check.name"); ok {
				k.check = v.Str()
			} else if v, ok := dp.Attributes().Get("heartbeat.mesh.check"); ok {
				k.check = v.Str()
			}
			val := dp.DoubleValue()
			if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
				val = float64(dp.IntValue())
			}
			at := dp.Timestamp().AsTime()
			if p, ok := out[k]; !ok || at.After(p.at) {
				out[k] = point{at, val}
			}
		}
	}
	return out
}

func podOf(ip netip.Addr) string { return "pod-" + ip.String() }

// ringWatch is, for every member of answer, the ring peers it should probe.
func ringWatch(answer []netip.Addr, k int) map[netip.Addr][]netip.Addr {
	out := map[netip.Addr][]netip.Addr{}
	ring := mesh.NewRing(answer)
	for _, m := range answer {
		for _, p := range ring.View(m).Peers(mesh.Plan{Mode: mesh.ModeRing, K: k}, 0) {
			out[m] = append(out[m], p.Addr)
		}
	}
	return out
}

// watchersOf inverts ringWatch for one member.
func watchersOf(watch map[netip.Addr][]netip.Addr, peer netip.Addr) []netip.Addr {
	var out []netip.Addr
	for w, ps := range watch {
		if slices.Contains(ps, peer) {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// ringState is, per pod, the ring peers of its newest export (if newer than
// since) with their probe.success: series of peers that left stop being
// exported, so older points do not count.
func ringState(r *otlptest.Receiver, since time.Time) map[string]map[string]float64 {
	points := latest(r, "probe.success")
	newest := map[string]time.Time{}
	for k, p := range points {
		if k.role == "ring" && p.at.After(newest[k.pod]) {
			newest[k.pod] = p.at
		}
	}
	out := map[string]map[string]float64{}
	for k, p := range points {
		if k.role != "ring" || p.at.Before(since) || !p.at.Equal(newest[k.pod]) {
			continue
		}
		if out[k.pod] == nil {
			out[k.pod] = map[string]float64{}
		}
		out[k.pod][k.peer] = p.val
	}
	return out
}

// ringMatches reports whether every live member's recent ring series are
// exactly its expected peers, all with the wanted value except down, which
// must read 0.
func ringMatches(state map[string]map[string]float64, watch map[netip.Addr][]netip.Addr, down netip.Addr) string {
	for w, peers := range watch {
		got := state[podOf(w)]
		if len(got) != len(peers) {
			return fmt.Sprintf("%v reports ring peers %v, want %v", w, sortedKeys(got), peers)
		}
		for _, p := range peers {
			v, ok := got[p.String()]
			want := 1.0
			if p == down {
				want = 0
			}
			if !ok || v != want {
				return fmt.Sprintf("%v: probe.success for ring peer %v = %v (present %v), want %v", w, p, v, ok, want)
			}
		}
	}
	return ""
}

func sortedKeys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// promtoolQuorum evaluates k8s/monitoring/mesh.rules.yaml with the real
// promtool over the ring results the sidecars reported, held for 5 minutes,
// and checks that HeartbeatMeshPeerDown fires for exactly want.
func promtoolQuorum(t *testing.T, state map[string]map[string]float64, check string, want netip.Addr) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Fatalf("promtool not installed (make test installs it): %v", err)
	}
	rules, err := filepath.Abs("k8s/monitoring/mesh.rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "rule_files:\n  - %s\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n", rules)
	pods := make([]string, 0, len(state))
	for pod := range state {
		pods = append(pods, pod)
	}
	sort.Strings(pods)
	for _, pod := range pods {
		for _, peer := range sortedKeys(state[pod]) {
			fmt.Fprintf(&b, "      - series: 'probe_success{check_name=%q,k8s_namespace_name=\"meshlab\",k8s_pod_name=%q,heartbeat_mesh_role=\"ring\",heartbeat_mesh_peer=%q}'\n        values: '%vx6'\n",
				check, pod, peer, state[pod][peer])
		}
	}
	fmt.Fprintf(&b, "    alert_rule_test:\n      - eval_time: 4m\n        alertname: HeartbeatMeshPeerDown\n        exp_alerts:\n")
	fmt.Fprintf(&b, "          - exp_labels: {severity: critical, check_name: %q, k8s_namespace_name: meshlab, heartbeat_mesh_peer: %q}\n", check, want.String())
	fmt.Fprintf(&b, "            exp_annotations:\n              summary: \"mesh peer %s is down for check %s\"\n", want, check)
	fmt.Fprintf(&b, "              description: \"3 of the ring watchers of %s in meshlab have failed it (check %s) for 2 minutes: a quorum of its watchers.\"\n", want, check)
	path := filepath.Join(t.TempDir(), "quorum.test.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "promtool", "test", "rules", path).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules on the observed series: %v\n%s\n%s", err, out, b.String())
	}
}

// freePort finds a TCP port free on every one of the addresses.
func freePort(t *testing.T, ips []netip.Addr) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ips[0], 0).String())
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		held := []net.Listener{ln}
		ok := true
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", netip.AddrPortFrom(ip, uint16(port)).String())
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on every sidecar address")
	return 0
}

func loopbacks(from, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{127, 0, 0, byte(from + i)})
	}
	return out
}

// viewAgreed reports whether every pod in pods reports the members count
// and view hash of answer, in data points newer than since.
func viewAgreed(r *otlptest.Receiver, pods []netip.Addr, answer []netip.Addr, since time.Time) string {
	ring := mesh.NewRing(answer)
	count, hash := latest(r, "probe.mesh.members"), latest(r, "probe.mesh.view.hash")
	for _, ip := range pods {
		k := seriesKey{pod: podOf(ip), check: "mesh"}
		c, h := count[k], hash[k]
		if c.at.Before(since) || h.at.Before(since) || c.val != float64(ring.Members()) || h.val != float64(ring.Hash()) {
			return fmt.Sprintf("%v: members %v hash %v (at %v), want %d %d", ip, c.val, h.val, c.at, ring.Members(), ring.Hash())
		}
	}
	return ""
}

// sweepFollowsRule checks every probe span: a ring probe goes to one of the
// sender's ring peers, a sweep probe to one of its sweep peers of the epoch
// the span names. It returns a violation, or "" once every sidecar showed
// one epoch's complete sweep set.
func sweepFollowsRule(spans []otlptest.Span, answer []netip.Addr, plan mesh.Plan) (violation string, complete bool) {
	ring := mesh.NewRing(answer)
	byPod := map[string]netip.Addr{}
	for _, a := range answer {
		byPod[podOf(a)] = a
	}
	seen := map[string]map[int64]map[string]bool{}
	for _, sp := range spans {
		role, ok := sp.Attributes().Get("heartbeat.mesh.role")
		if !ok {
			continue
		}
		podV, _ := sp.Resource.Attributes().Get("k8s.pod.name")
		self, ok := byPod[podV.Str()]
		if !ok {
			continue // a sidecar outside this answer
		}
		peerV, _ := sp.Attributes().Get("network.peer.address")
		epochV, _ := sp.Attributes().Get("heartbeat.mesh.epoch")
		var want []string
		for _, p := range ring.View(self).Peers(plan, epochV.Int()) {
			if p.Role.String() == role.Str() {
				want = append(want, p.Addr.String())
			}
		}
		if !slices.Contains(want, peerV.Str()) {
			return fmt.Sprintf("%v probed %s as %s peer in epoch %d; its %s peers are %v", self, peerV.Str(), role.Str(), epochV.Int(), role.Str(), want), false
		}
		if role.Str() == "sweep" {
			if seen[podV.Str()] == nil {
				seen[podV.Str()] = map[int64]map[string]bool{}
			}
			if seen[podV.Str()][epochV.Int()] == nil {
				seen[podV.Str()][epochV.Int()] = map[string]bool{}
			}
			seen[podV.Str()][epochV.Int()][peerV.Str()] = true
		}
	}
	for pod := range byPod {
		full := false
		for _, peers := range seen[pod] {
			full = full || len(peers) == plan.Sweep
		}
		if !full {
			return "", false
		}
	}
	return "", true
}

// TestMeshProcesses runs 30 sidecars with a ring + sweep mesh check, stops
// one, and replaces it.
func TestMeshProcesses(t *testing.T) {
	const k = 3
	all := loopbacks(2, 31) // 127.0.0.2 … 127.0.0.32; the last is the replacement
	members, replacement := all[:30], all[30]
	otlp := otlptest.Start(t)
	d := startHeadless(t, "peers.meshlab.test")
	d.setMembers(members)
	lab := &meshLab{t: t, dns: d, otlp: otlp, port: freePort(t, all), sidecars: map[netip.Addr]*sidecar{}}
	lab.config = filepath.Join(t.TempDir(), "mesh.yaml")
	cfg := fmt.Sprintf(`checks:
  - name: mesh
    type: http
    target: http://peers.meshlab.test:%d/heartbeat/16
    interval: 1s
    timeout: 500ms
    jitter: 0.1
    failure_threshold: 1
    peers: {mode: sweep, k: %d, sweep: 4, epoch: 2s}
`, lab.port, k)
	if err := os.WriteFile(lab.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, ip := range members {
		lab.start(ip)
	}
	lab.waitReady(members)

	// Every sidecar probes exactly its k ring peers, all up, and agrees on the view.
	watch := ringWatch(members, k)
	since := time.Now()
	wait := func(what string, cond func() string) {
		t.Helper()
		var last string
		defer func() {
			if t.Failed() && last != "" {
				t.Logf("%s: last mismatch: %s", what, last)
			}
		}()
		otlp.WaitFor(t, 30*time.Second, what, func() bool { last = cond(); return last == "" })
	}
	wait("ring peers up", func() string { return ringMatches(ringState(otlp, since), watch, netip.Addr{}) })
	wait("views agree", func() string { return viewAgreed(otlp, members, members, since) })
	plan := mesh.Plan{Mode: mesh.ModeSweep, K: k, Sweep: 4, Epoch: 2 * time.Second}
	var violation string
	otlp.WaitFor(t, 30*time.Second, "every sidecar's full sweep of one epoch", func() bool {
		v, done := sweepFollowsRule(otlp.Spans(), members, plan)
		violation = v
		return done || v != ""
	})
	if violation != "" {
		t.Fatal(violation)
	}
	wait("every member receives mesh probes", func() string {
		got := latest(otlp, "heartbeat.mesh.probes.received")
		for _, ip := range members {
			if p := got[seriesKey{pod: podOf(ip), check: "mesh"}]; p.val < k+4 {
				return fmt.Sprintf("%v received %v mesh probes", ip, p.val)
			}
		}
		return ""
	})

	// Stop one: exactly its k watchers fail it, and the quorum rule fires.
	gone := members[7]
	lab.stop(lab.sidecars[gone])
	live := slices.DeleteFunc(slices.Clone(members), func(a netip.Addr) bool { return a == gone })
	liveWatch := ringWatch(members, k)
	delete(liveWatch, gone)
	if w := watchersOf(liveWatch, gone); len(w) != k {
		t.Fatalf("%v has watchers %v, want %d", gone, w, k)
	}
	otlp.Reset()
	since = time.Now()
	var state map[string]map[string]float64
	wait("exactly its watchers fail the stopped sidecar", func() string {
		state = ringState(otlp, since)
		return ringMatches(state, liveWatch, gone)
	})
	promtoolQuorum(t, state, "mesh", gone)

	// Drop it from DNS: the others see it leave on the next resolution.
	d.setMembers(live)
	otlp.Reset()
	since = time.Now()
	watch = ringWatch(live, k)
	wait("ring without the stopped sidecar", func() string { return ringMatches(ringState(otlp, since), watch, netip.Addr{}) })
	wait("views agree on 29", func() string { return viewAgreed(otlp, live, live, since) })

	// Its replacement takes its place.
	next := append(slices.Clone(live), replacement)
	lab.start(replacement)
	lab.waitReady([]netip.Addr{replacement})
	d.setMembers(next)
	otlp.Reset()
	since = time.Now()
	watch = ringWatch(next, k)
	if w := watchersOf(watch, replacement); len(w) != k {
		t.Fatalf("replacement has watchers %v, want %d", w, k)
	}
	wait("ring with the replacement", func() string { return ringMatches(ringState(otlp, since), watch, netip.Addr{}) })
	wait("views agree with the replacement", func() string { return viewAgreed(otlp, next, next, since) })
}
