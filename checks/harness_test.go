package checks

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// harness is a Runner wired to in-memory OTel SDK readers and exporters.
type harness struct {
	t      *testing.T
	r      *Runner
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	logs   *memLogs
	slog   *testkit.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

// newHarness builds a Runner; probe, when non-nil, replaces every prober.
func newHarness(t *testing.T, mod func(*Settings), p probe.ProbeFunc) *harness {
	t.Helper()
	h := &harness{t: t, reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(),
		logs: &memLogs{}, slog: &testkit.Buffer{}}
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
		Syslog: syslog.Config{Addr: "none"},
	}
	if mod != nil {
		mod(&s)
	}
	r, err := New(s)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if p != nil {
		r.probers = func(string) (probe.ProbeFunc, bool) { return p, true }
	}
	h.r = r
	return h
}

// apply gives the Runner checks, with defaults applied as the loaders would.
func (h *harness) apply(checks ...config.Check) {
	h.t.Helper()
	for i := range checks {
		checks[i].ApplyDefaults()
	}
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

// schedCheck is a valid check that the tests' fake probers answer.
func schedCheck(name string, interval time.Duration) config.Check {
	return config.Check{
		Name: name, Type: config.TypeTCP, Target: "127.0.0.1:9", Interval: interval,
		Timeout: interval, FailureThreshold: 1, SuccessThreshold: 1,
	}
}

var (
	fakeOK      = probe.Result{Success: true, Message: "Connection to 127.0.0.1:9 successful."}
	fakeRefused = probe.Result{ErrorType: probe.ErrConnectionRefused, Reason: "connection refused"}
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

// assertGauge compares every point of gauge name with want, in any order
// and ignoring time stamps, using metricdatatest.
func assertGauge(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...metricdata.DataPoint[int64]) {
	t.Helper()
	m, ok := findMetric(rm, name)
	if !ok {
		t.Errorf("no metric %s", name)
		return
	}
	got, ok := m.Data.(metricdata.Gauge[int64])
	if !ok {
		t.Errorf("%s is a %T, want an int64 gauge", name, m.Data)
		return
	}
	metricdatatest.AssertEqual(t, metricdata.Gauge[int64]{DataPoints: want}, got, metricdatatest.IgnoreTimestamp())
}

// point is a gauge point of value v with the attributes kvs.
func point(v int64, kvs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: attribute.NewSet(kvs...), Value: v}
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
