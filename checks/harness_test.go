package checks

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// harness is a Runner wired to in-memory OTel SDK readers and exporters.
type harness struct {
	t      *testing.T
	r      *Runner
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	logs   *memLogs
	slog   *syncBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

// newHarness builds a Runner; probe, when non-nil, replaces every prober.
func newHarness(t *testing.T, mod func(*Settings), probe ProbeFunc) *harness {
	t.Helper()
	h := &harness{t: t, reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(),
		logs: &memLogs{}, slog: &syncBuffer{}}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(h.reader))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(h.spans))
	lp := sdklog.NewLoggerProvider(sdklog.WithProcessor(sdklog.NewSimpleProcessor(h.logs)))
	t.Cleanup(func() {
		ctx := context.Background()
		_ = mp.Shutdown(ctx)
		_ = tp.Shutdown(ctx)
		_ = lp.Shutdown(ctx)
	})
	s := Settings{
		MeterProvider: mp, TracerProvider: tp, LoggerProvider: lp,
		Logger: slog.New(slog.NewTextHandler(h.slog, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Syslog: SyslogConfig{Addr: "none"},
	}
	if mod != nil {
		mod(&s)
	}
	r, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if probe != nil {
		r.probers = func(string) (ProbeFunc, bool) { return probe, true }
	}
	h.r = r
	return h
}

func (h *harness) apply(checks ...config.Check) {
	h.t.Helper()
	if err := h.r.Apply(&config.File{Checks: checks}); err != nil {
		h.t.Fatalf("Apply: %v", err)
	}
}

// start runs the Runner until stop (or the end of the test).
func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := h.r.Run(ctx); err != nil {
			h.t.Errorf("Run: %v", err)
		}
	}()
	h.t.Cleanup(h.stop)
}

// stop ends Run and waits for it to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("Run did not return within 10s of cancellation")
	}
}

func (h *harness) metrics() metricdata.ResourceMetrics {
	h.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := h.reader.Collect(context.Background(), &rm); err != nil {
		h.t.Fatalf("collect: %v", err)
	}
	return rm
}

// status returns the status of check name's main series.
func (h *harness) status(name string) SeriesStatus {
	for _, c := range h.r.Status() {
		if c.Name == name {
			return c.SeriesStatus
		}
	}
	h.t.Fatalf("no check %q in status", name)
	return SeriesStatus{}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not a stand-in for a signal
	}
}

// schedCheck is a valid check that the tests' fake probers answer.
func schedCheck(name string, interval time.Duration) config.Check {
	return config.Check{
		Name: name, Type: config.TypeTCP, Target: "127.0.0.1:9", Interval: interval,
		Timeout: interval, FailureThreshold: 1, SuccessThreshold: 1,
	}
}

var (
	fakeOK      = Result{Success: true, Message: "Connection to 127.0.0.1:9 successful."}
	fakeRefused = Result{ErrorType: ErrConnectionRefused, Reason: "connection refused"}
)

// attrsMatch reports whether set holds every key=value of want.
func attrsMatch(set attribute.Set, want map[string]string) bool {
	for k, v := range want {
		got, ok := set.Value(attribute.Key(k))
		if !ok || got.String() != v {
			return false
		}
	}
	return true
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// counterSum adds up a counter's points whose attributes match want.
func counterSum(rm metricdata.ResourceMetrics, name string, want map[string]string) int64 {
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if attrsMatch(dp.Attributes, want) {
			n += dp.Value
		}
	}
	return n
}

// gaugePoints returns a gauge's points whose attributes match want.
func gaugePoints(rm metricdata.ResourceMetrics, name string, want map[string]string) []metricdata.DataPoint[int64] {
	m, ok := findMetric(rm, name)
	if !ok {
		return nil
	}
	var out []metricdata.DataPoint[int64]
	for _, dp := range m.Data.(metricdata.Gauge[int64]).DataPoints {
		if attrsMatch(dp.Attributes, want) {
			out = append(out, dp)
		}
	}
	return out
}

// histPoints returns a histogram's points whose attributes match want.
func histPoints(rm metricdata.ResourceMetrics, name string, want map[string]string) []metricdata.HistogramDataPoint[float64] {
	m, ok := findMetric(rm, name)
	if !ok {
		return nil
	}
	var out []metricdata.HistogramDataPoint[float64]
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		if attrsMatch(dp.Attributes, want) {
			out = append(out, dp)
		}
	}
	return out
}

// memLogs is an in-memory sdk/log exporter.
type memLogs struct {
	mu   sync.Mutex
	recs []sdklog.Record
}

func (m *memLogs) Export(_ context.Context, recs []sdklog.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range recs {
		m.recs = append(m.recs, r.Clone())
	}
	return nil
}
func (m *memLogs) Shutdown(context.Context) error   { return nil }
func (m *memLogs) ForceFlush(context.Context) error { return nil }
func (m *memLogs) records() []sdklog.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]sdklog.Record(nil), m.recs...)
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a slog handler.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// syslogListener is a real syslog endpoint: a UDP or unix datagram socket
// whose received lines arrive on lines.
type syslogListener struct {
	conn  net.PacketConn
	addr  string // for SyslogConfig.Addr
	local bool   // unix socket: log/syslog's local format
	lines chan string
}

const syslogSentinel = "-- end of test --"

// listenSyslog listens on udp 127.0.0.1:0, or on a unix datagram socket at
// path (a fresh one when path is "").
func listenSyslog(t *testing.T, network, path string) *syslogListener {
	t.Helper()
	var (
		conn net.PacketConn
		err  error
		l    = &syslogListener{lines: make(chan string, 10000)}
	)
	switch network {
	case "udp":
		conn, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err == nil {
			l.addr = "udp://" + conn.LocalAddr().String()
		}
	case "unixgram":
		if path == "" {
			path = shortTempDir(t) + "/log.sock"
		}
		conn, err = net.ListenPacket("unixgram", path)
		l.addr, l.local = "unix://"+path, true
	}
	if err != nil {
		t.Fatalf("listen %s: %v", network, err)
	}
	l.conn = conn
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(l.lines)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			l.lines <- string(buf[:n])
		}
	}()
	return l
}

// shortTempDir is a temporary directory with a short path: t.TempDir paths
// can exceed the 108 bytes a unix socket path may have.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hbsys")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// drain returns every line received so far. It sends itself a sentinel
// datagram first: datagrams are delivered in order, so once the sentinel is
// read back, everything sent before the call has been read.
func (l *syslogListener) drain(t *testing.T) []string {
	t.Helper()
	network := "udp"
	if l.local {
		network = "unixgram"
	}
	c, err := net.Dial(network, l.conn.LocalAddr().String())
	if err != nil {
		t.Fatalf("dial own syslog listener: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(syslogSentinel)); err != nil {
		t.Fatalf("write sentinel: %v", err)
	}
	var out []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-l.lines:
			if line == syslogSentinel {
				return out
			}
			out = append(out, line)
		case <-timeout:
			t.Fatalf("sentinel not received; got %q", out)
		}
	}
}

// syslogLine is one parsed RFC 3164 line as log/syslog writes it.
type syslogLine struct {
	pri  int
	tag  string
	pid  int
	host string
	msg  string
}

var (
	localLineRE   = regexp.MustCompile(`^<(\d{1,3})>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) ([^\[ ]+)\[(\d+)\]: (.*)\n$`)
	networkLineRE = regexp.MustCompile(`^<(\d{1,3})>(\S+) (\S+) ([^\[ ]+)\[(\d+)\]: (.*)\n$`)
)

func parseSyslog(line string, local bool) (syslogLine, error) {
	var l syslogLine
	if local {
		m := localLineRE.FindStringSubmatch(line)
		if m == nil {
			return l, fmt.Errorf("not a local syslog line: %q", line)
		}
		if _, err := time.Parse(time.Stamp, m[2]); err != nil {
			return l, fmt.Errorf("time stamp %q: %w", m[2], err)
		}
		l.pri, _ = strconv.Atoi(m[1])
		l.tag, l.msg = m[3], m[5]
		l.pid, _ = strconv.Atoi(m[4])
		return l, nil
	}
	m := networkLineRE.FindStringSubmatch(line)
	if m == nil {
		return l, fmt.Errorf("not a network syslog line: %q", line)
	}
	if _, err := time.Parse(time.RFC3339, m[2]); err != nil {
		return l, fmt.Errorf("time stamp %q: %w", m[2], err)
	}
	l.pri, _ = strconv.Atoi(m[1])
	l.host, l.tag, l.msg = m[3], m[4], m[6]
	l.pid, _ = strconv.Atoi(m[5])
	return l, nil
}
