package checks

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog/syslogtest"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// fakePayload answers like a heartbeat payload server: a body and a
// Server-Timing header.
func fakePayload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Server-Timing", "app;dur=0.5")
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("0123456789ABCDEF"))
}

func schedHTTPCheck(name, target string) config.Check {
	c := schedCheck(name, 50*time.Millisecond)
	c.Type, c.Target, c.Timeout = config.TypeHTTP, target, 2*time.Second
	c.Interval = 50 * time.Millisecond
	return c
}

func TestHTTPCheckTelemetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakePayload))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	okURL := "http://localhost:" + port + "/heartbeat/16"
	bad := testkit.ClosedAddr(t)
	badURL := "http://" + bad + "/heartbeat/16"

	h := newHarness(t, nil, nil) // real probers
	h.apply(schedHTTPCheck("ok", okURL), schedHTTPCheck("bad", badURL))
	h.start()
	testkit.Eventually(t, 10*time.Second, "both checks to run", func() bool {
		return h.status("ok").Runs >= 1 && h.status("bad").Runs >= 1
	})
	h.stop()
	rm := h.metrics()

	okAttrs := map[string]string{"check.name": "ok", "check.type": "http", "server.address": "localhost", "server.port": port}
	okSet := seriesAttrs("ok", "http", "localhost", port)
	_, badPort, _ := net.SplitHostPort(bad)
	badSet := seriesAttrs("bad", "http", "127.0.0.1", badPort)
	assertGauge(t, rm, "probe.success", point(1, okSet...), point(0, badSet...))
	assertGauge(t, rm, "probe.http.status_code", point(200, okSet...))
	assertGauge(t, rm, "heartbeat.check.up", point(1, okSet...), point(0, badSet...))
	if n := counterSum(rm, "probe.runs", mergeAttrs(okAttrs, map[string]string{"outcome": "success"})); n < 1 {
		t.Errorf("probe.runs{outcome=success} = %d", n)
	}
	for _, name := range []string{"probe.duration", "probe.network.duration"} {
		if p := histPoints(rm, name, okAttrs); len(p) != 1 || p[0].Count < 1 {
			t.Errorf("%s = %+v, want one series with counts", name, p)
		}
	}
	// Phases and the semconv HTTP metric are not per check (see sharedSets).
	for _, phase := range []string{probe.PhaseConnect, probe.PhaseRequest, probe.PhaseProcessing, probe.PhaseTransfer} {
		p := histPoints(rm, "probe.phase.duration", map[string]string{"check.type": "http", "phase": phase})
		want := uint64(1)
		if phase == probe.PhaseConnect {
			want = 2 // the refused check connects too
		}
		if len(p) != 1 || p[0].Count < want {
			t.Errorf("probe.phase.duration{phase=%s}: %+v, want one series of all checks' runs", phase, p)
		}
	}
	semconvAttrs := map[string]string{"http.request.method": "GET", "server.address": "localhost",
		"server.port": port, "http.response.status_code": "200"}
	if p := histPoints(rm, "http.client.request.duration", semconvAttrs); len(p) != 1 {
		t.Errorf("http.client.request.duration with semconv attributes: %d series, want 1", len(p))
	}
	for _, name := range []string{"probe.phase.duration", "http.client.request.duration"} {
		m, _ := findMetric(rm, name)
		for _, set := range attrSets(m) {
			if set.HasValue("check.name") {
				t.Errorf("%s has a per-check series: %s", name, set.Encoded(attribute.DefaultEncoder()))
			}
		}
	}

	if n := counterSum(rm, "probe.runs", map[string]string{"check.name": "bad", "outcome": "failure", "error.type": probe.ErrConnectionRefused}); n < 1 {
		t.Errorf("probe.runs{outcome=failure,error.type=connection_refused} = %d", n)
	}
	if p := histPoints(rm, "http.client.request.duration", map[string]string{"error.type": probe.ErrConnectionRefused}); len(p) != 1 {
		t.Errorf("http.client.request.duration for a refused request: %d series, want 1 with error.type", len(p))
	}
	if p := histPoints(rm, "heartbeat.scheduler.lateness", nil); len(p) != 1 || p[0].Count < 2 {
		t.Errorf("heartbeat.scheduler.lateness = %+v", p)
	}
	// Addresses go on spans, never on the metrics of an ordinary check.
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, set := range attrSets(m) {
				if _, ok := set.Value("network.peer.address"); ok {
					t.Errorf("metric %s carries a resolved address: %s", m.Name, set.Encoded(attribute.DefaultEncoder()))
				}
			}
		}
	}

	// The run span, with the phases as children.
	var run sdktrace.ReadOnlySpan
	children := map[string]int{}
	for _, s := range h.spans.Ended() {
		if s.Name() == "probe ok" && run == nil {
			run = s
		}
	}
	if run == nil {
		t.Fatal("no span named \"probe ok\"")
	}
	for _, s := range h.spans.Ended() {
		if s.Parent().SpanID() == run.SpanContext().SpanID() {
			children[s.Name()]++
			if s.StartTime().Before(run.StartTime()) || s.EndTime().After(run.EndTime()) {
				t.Errorf("phase span %s [%v, %v] outside the run [%v, %v]", s.Name(), s.StartTime(), s.EndTime(), run.StartTime(), run.EndTime())
			}
		}
	}
	if run.SpanKind() != trace.SpanKindClient {
		t.Errorf("run span kind %v, want client", run.SpanKind())
	}
	if children[probe.PhaseConnect] != 1 || children[probe.PhaseProcessing] != 1 || children[probe.PhaseTransfer] != 1 {
		t.Errorf("run span children %v, want one span per phase", children)
	}
	attrs := map[string]string{}
	for _, kv := range run.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{"check.name": "ok", "url.full": okURL, "http.response.status_code": "200", "server.address": "localhost"} {
		if attrs[k] != v {
			t.Errorf("run span attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	if a := attrs["network.peer.address"]; a != "127.0.0.1" && a != "::1" {
		t.Errorf("run span network.peer.address = %q, want the dialled loopback address", a)
	}
	for _, s := range h.spans.Ended() {
		if s.Name() == "probe bad" {
			if s.Status().Code != codes.Error || s.Status().Description == "" {
				t.Errorf("failed run span status %+v, want Error with a reason", s.Status())
			}
			break
		}
	}
}

// seriesAttrs are the attributes of a check's own metric series.
func seriesAttrs(name, typ, host, port string) []attribute.KeyValue {
	p, err := strconv.Atoi(port)
	if err != nil {
		panic(err)
	}
	return []attribute.KeyValue{attribute.String("check.name", name), attribute.String("check.type", typ),
		semconv.ServerAddressKey.String(host), semconv.ServerPortKey.Int(p)}
}

func mergeAttrs(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestTracePropagation probes a second in-process service that extracts the
// traceparent and starts a server span with its own SDK tracer: the server
// span must join the probe's trace as the run span's child.
func TestTracePropagation(t *testing.T) {
	serverSpans := tracetest.NewSpanRecorder()
	serverTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(serverSpans))
	t.Cleanup(func() { _ = serverTP.Shutdown(context.Background()) })
	prop := propagation.TraceContext{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		_, span := serverTP.Tracer("sidecar").Start(ctx, "GET /heartbeat/{n}", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		fakePayload(w, r)
	}))
	t.Cleanup(srv.Close)

	h := newHarness(t, nil, nil)
	h.apply(schedHTTPCheck("mesh", srv.URL+"/heartbeat/16"))
	h.start()
	testkit.Eventually(t, 10*time.Second, "a server span", func() bool { return len(serverSpans.Ended()) >= 1 })
	h.stop()

	server := serverSpans.Ended()[0]
	if !server.Parent().IsRemote() {
		t.Errorf("server span parent %v is not remote: no traceparent arrived", server.Parent())
	}
	var probe sdktrace.ReadOnlySpan
	for _, s := range h.spans.Ended() {
		if s.Name() == "probe mesh" && s.SpanContext().TraceID() == server.SpanContext().TraceID() {
			probe = s
		}
	}
	if probe == nil {
		t.Fatalf("no probe span in trace %s", server.SpanContext().TraceID())
	}
	if server.Parent().SpanID() != probe.SpanContext().SpanID() {
		t.Errorf("server span's parent is %s, want the probe span %s", server.Parent().SpanID(), probe.SpanContext().SpanID())
	}
}

// peerDNS is a real DNS server on 127.0.0.1 answering A queries for one
// name from a list the test can change.
type peerDNS struct {
	mu    sync.Mutex
	name  string
	addrs []string
	addr  string
}

func startPeerDNS(t *testing.T, name string, addrs ...string) *peerDNS {
	t.Helper()
	d := &peerDNS{name: dns.Fqdn(name), addrs: addrs}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.addr = pc.LocalAddr().String()
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		q := req.Question[0]
		d.mu.Lock()
		switch {
		case !strings.EqualFold(q.Name, d.name):
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			for _, a := range d.addrs {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.ParseIP(a)})
			}
		}
		d.mu.Unlock()
		_ = w.WriteMsg(m)
	})}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go func() { _ = srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { _ = srv.Shutdown() })
	return d
}

func (d *peerDNS) set(addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = addrs
}

// resolver sends every query to d.
func (d *peerDNS) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dd net.Dialer
		return dd.DialContext(ctx, "udp", d.addr)
	}}
}

func TestEachAddress(t *testing.T) {
	open := testkit.AcceptAndClose(t)
	_, port, _ := net.SplitHostPort(open)
	const name = "peers.heartbeat.test"
	// 127.0.0.2 is loopback too, but nothing listens there: refused.
	d := startPeerDNS(t, name, "127.0.0.2", "127.0.0.1", "127.0.0.1")

	h := newHarness(t, nil, nil)
	h.r.resolver = d.resolver()
	c := schedCheck("peers", 20*time.Millisecond)
	c.Target, c.Timeout, c.EachAddress, c.MaxAddresses = net.JoinHostPort(name, port), time.Second, true, 3
	h.apply(c)
	h.start()

	addrStatus := func() map[string]SeriesStatus {
		out := map[string]SeriesStatus{}
		for _, cs := range h.r.Status() {
			for _, a := range cs.Addresses {
				out[a.Address.String()] = a
			}
		}
		return out
	}
	up, down := "127.0.0.1:"+port, "127.0.0.2:"+port
	testkit.Eventually(t, 10*time.Second, "both addresses to be probed", func() bool {
		st := addrStatus()
		return st[up].Runs >= 2 && st[down].Runs >= 2
	})
	st := addrStatus()
	if len(st) != 2 {
		t.Errorf("status has addresses %v, want 2 (duplicates merged)", st)
	}
	if st[up].State != StateUp || st[down].State != StateDown || st[down].LastErrorType != probe.ErrConnectionRefused {
		t.Errorf("address states: %s %v, %s %v (%s); want up and down (connection_refused)",
			up, st[up].State, down, st[down].State, st[down].LastErrorType)
	}
	if main := h.status("peers"); main.State != StateUp {
		t.Errorf("resolution series state %v, want up", main.State)
	}
	rm := h.metrics()
	base := seriesAttrs("peers", "tcp", name, port)
	peer := func(addr string) []attribute.KeyValue {
		return append(slices.Clip(base), semconv.NetworkPeerAddressKey.String(addr))
	}
	assertGauge(t, rm, "probe.success", point(1, base...), point(1, peer("127.0.0.1")...), point(0, peer("127.0.0.2")...))
	var alerted bool
	for _, r := range h.logs.records() {
		if strings.Contains(r.Body().AsString(), "address="+down) {
			alerted = true
		}
	}
	if !alerted {
		t.Errorf("no alert names the down address %s", down)
	}

	// The peer leaves DNS: its series goes away, in status and in metrics.
	d.set("127.0.0.1")
	testkit.Eventually(t, 10*time.Second, "the departed address to be forgotten", func() bool { return len(addrStatus()) == 1 })
	assertGauge(t, h.metrics(), "probe.success", point(1, base...), point(1, peer("127.0.0.1")...))

	// More peers than max_addresses: only the first three are probed.
	d.set("127.0.0.1", "127.0.0.5", "127.0.0.4", "127.0.0.3", "127.0.0.2")
	testkit.Eventually(t, 10*time.Second, "three addresses", func() bool { return len(addrStatus()) == 3 })
	for _, a := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if _, ok := addrStatus()[a+":"+port]; !ok {
			t.Errorf("address %s not probed; want the lowest three", a)
		}
	}

	// The name stops resolving: the check itself goes down with error.type dns.
	d.mu.Lock()
	d.name = "other.heartbeat.test."
	d.mu.Unlock()
	testkit.Eventually(t, 10*time.Second, "the resolution to fail", func() bool { return h.status("peers").State == StateDown })
	if st := h.status("peers"); st.LastErrorType != probe.ErrDNS {
		t.Errorf("resolution failure error.type %q, want dns", st.LastErrorType)
	}
}

// attrSets returns the attribute sets of every point of m.
func attrSets(m metricdata.Metrics) []attribute.Set {
	var out []attribute.Set
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, p.Attributes)
		}
	}
	return out
}

// TestRunnerNoLeaks runs real HTTP checks (one failing, so alerts go to a
// real syslog listener) and requires goroutines and descriptors to return
// to their baseline once Run has returned.
func TestRunnerNoLeaks(t *testing.T) {
	testkit.CheckLeaks(t) // registered first, so it checks after every other cleanup
	srv := httptest.NewServer(http.HandlerFunc(fakePayload))
	t.Cleanup(srv.Close)
	sl := syslogtest.Listen(t, "udp", "")
	h := newHarness(t, func(s *Settings) { s.Syslog.Addr = sl.Addr }, nil)
	var cs []config.Check
	for i := range 10 {
		cs = append(cs, schedHTTPCheck(fmt.Sprintf("c%d", i), srv.URL+"/heartbeat/16"))
	}
	cs = append(cs, schedHTTPCheck("refused", "http://"+testkit.ClosedAddr(t)+"/"))
	h.apply(cs...)
	h.start()
	testkit.Eventually(t, 10*time.Second, "every check to run 3 times", func() bool {
		for _, c := range cs {
			if h.status(c.Name).Runs < 3 {
				return false
			}
		}
		return true
	})
	h.stop()
	srv.CloseClientConnections()
	if lines := sl.Drain(t); len(lines) != 1 {
		t.Errorf("got %d alerts, want 1 for the refused check: %q", len(lines), lines)
	}
}
