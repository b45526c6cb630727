package telemetry

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/log"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// selfMetric returns the value of a self-metric data point for signal, or -1.
func selfMetric(m otlptest.Metric, signal string) int64 {
	if m.Type() != pmetric.MetricTypeSum {
		return -1
	}
	for _, dp := range m.Sum().DataPoints().All() {
		if v, ok := dp.Attributes().Get("signal"); ok && v.Str() == signal {
			return dp.IntValue()
		}
	}
	return -1
}

// TestExportFailuresAreCounted: items in failed exports show up in
// heartbeat.telemetry.export.failures once the collector accepts data again,
// and ForceFlush reports the failure.
func TestExportFailuresAreCounted(t *testing.T) {
	r := otlptest.Start(t)
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_SAMPLER": "always_on"})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)

	// InvalidArgument is not retried, so each export fails at once.
	r.SetError(status.Error(codes.InvalidArgument, "injected"))
	for range 5 {
		record(context.Background(), t, p, "lost")
	}
	err = flush(p)
	for _, want := range []string{"flush traces: export failed", "flush metrics: export failed", "flush logs: export failed", "injected"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ForceFlush error %v lacks %q", err, want)
		}
	}

	r.SetError(nil)
	if err := flush(p); err != nil {
		t.Fatalf("ForceFlush after recovery: %v", err)
	}
	m := r.WaitForMetric(t, metricExportFailures, 5*time.Second)
	if got := selfMetric(m, signalTraces); got != 5 {
		t.Errorf("failures{signal=traces} = %d, want 5", got)
	}
	if got := selfMetric(m, signalLogs); got != 5 {
		t.Errorf("failures{signal=logs} = %d, want 5", got)
	}
	if got := selfMetric(m, signalMetrics); got < 1 {
		t.Errorf("failures{signal=metrics} = %d, want >= 1", got)
	}
	if got := m.Unit(); got != "{item}" {
		t.Errorf("unit = %q, want {item}", got)
	}
}

// TestQueueBoundDropsAndCounts: with the collector down, the span and log
// queues hold at most their bound and the excess is counted as dropped.
func TestQueueBoundDropsAndCounts(t *testing.T) {
	r := otlptest.Start(t)
	r.Stop()
	setEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_SAMPLER": "always_on",
		"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BLRP_MAX_QUEUE_SIZE": "10",
		// Only metric exports give up fast, so the self-metric gets out soon after
		// the collector returns while span and log exports stay stuck in retry.
		"OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": "300", "OTEL_METRIC_EXPORT_INTERVAL": "100",
	})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger(), reconnectMaxDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)

	tracer := p.TracerProvider.Tracer("test")
	logger := p.LoggerProvider.Logger("test")
	for range 100 {
		_, s := tracer.Start(context.Background(), "s")
		s.End()
		logger.Emit(context.Background(), log.Record{})
	}

	r.Restart(t)
	r.WaitForMetricFunc(t, metricExportDropped, 10*time.Second, func(m otlptest.Metric) bool {
		// The first export of 10 items is stuck in retry until its timeout,
		// which is far longer than the loop above: exactly 90 are dropped.
		return selfMetric(m, signalTraces) == 90 && selfMetric(m, signalLogs) == 90
	})
}

// TestCollectorDown: against a closed port, recording never blocks and
// memory stays flat; when a collector appears on that port, data arrives.
func TestCollectorDown(t *testing.T) {
	r := otlptest.Start(t)
	r.Stop()
	setEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_SAMPLER": "always_on",
		"OTEL_EXPORTER_OTLP_TIMEOUT": "1000", "OTEL_METRIC_EXPORT_INTERVAL": "200",
		"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_BLRP_SCHEDULE_DELAY": "100",
	})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger(), reconnectMaxDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)

	tracer := p.TracerProvider.Tracer("test")
	otelLogger := p.LoggerProvider.Logger("test")
	hist, err := p.MeterProvider.Meter("test").Float64Histogram("test.histogram")
	if err != nil {
		t.Fatal(err)
	}
	attrs := make([]metric.RecordOption, 8)
	for i := range attrs {
		attrs[i] = metric.WithAttributeSet(attribute.NewSet(attribute.Int("n", i)))
	}
	spanAttrs := trace.WithAttributes(attribute.String("http.route", "/heartbeat/{size}"), attribute.Int("http.response.status_code", 200))
	work := func(n int) {
		for i := range n {
			ctx, s := tracer.Start(context.Background(), "down", spanAttrs)
			hist.Record(ctx, float64(i%100)/1000, attrs[i%len(attrs)])
			var rec log.Record
			rec.SetBody(attribute.StringValue("collector is down"))
			otelLogger.Emit(ctx, rec)
			s.End()
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}

	work(10_000) // fills the queues to their bound
	before := heap()
	work(100_000)
	after := heap()
	const slack = 4 << 20
	if after > before+slack {
		t.Errorf("heap grew from %d to %d bytes (> %d MB) while the collector was down", before, after, slack>>20)
	}

	// Whatever was queued may have failed before the reconnect; like a live
	// sidecar, keep producing so there is something new to export.
	done := make(chan struct{})
	produced := make(chan struct{})
	t.Cleanup(func() { close(done); <-produced })
	go func() {
		defer close(produced)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				work(1)
			}
		}
	}()

	r.Restart(t)
	r.WaitForSpans(t, 1, 15*time.Second)
	r.WaitForLogs(t, 1, 15*time.Second)
	r.WaitForMetric(t, "test.histogram", 15*time.Second)
	m := r.WaitForMetricFunc(t, metricExportDropped, 15*time.Second, func(m otlptest.Metric) bool {
		return selfMetric(m, signalTraces) > 0 && selfMetric(m, signalLogs) > 0
	})
	t.Logf("dropped while down: traces %d, logs %d; heap %d -> %d",
		selfMetric(m, signalTraces), selfMetric(m, signalLogs), before, after)
}

// fakeClock is the error-log rate limiter's clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestErrorLogRateLimit: many failing exports give one warning per signal
// per interval, then one recovery line per signal.
func TestErrorLogRateLimit(t *testing.T) {
	r := otlptest.Start(t)
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_SAMPLER": "always_on"})
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	logger, buf := testkit.JSONLogger()
	p, err := Setup(context.Background(), Options{Logger: logger, now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)

	round := func(wantErr bool) {
		t.Helper()
		record(context.Background(), t, p, "x")
		if err := flush(p); (err != nil) != wantErr {
			t.Fatalf("ForceFlush err = %v, want error: %v", err, wantErr)
		}
	}
	// lines counts log lines with msg per signal, and returns the last line per signal.
	lines := func(msg string) (map[string]int, map[string]map[string]any) {
		n, last := map[string]int{}, map[string]map[string]any{}
		for _, l := range buf.JSONLines(t) {
			if l["msg"] == msg {
				s, _ := l["signal"].(string)
				n[s]++
				last[s] = l
			}
		}
		return n, last
	}
	want := func(msg string, count int) map[string]map[string]any {
		t.Helper()
		n, last := lines(msg)
		for _, s := range []string{signalTraces, signalMetrics, signalLogs} {
			if n[s] != count {
				t.Errorf("%q lines for %s = %d, want %d", msg, s, n[s], count)
			}
		}
		return last
	}
	const failed, recovered = "telemetry export failed; the data is dropped", "telemetry export recovered"

	r.SetError(status.Error(codes.InvalidArgument, "injected"))
	for range 10 {
		round(true)
	}
	want(failed, 1)

	clock.Advance(59 * time.Second)
	round(true)
	want(failed, 1)

	clock.Advance(2 * time.Second) // a minute after the first line
	round(true)
	last := want(failed, 2)
	for s, l := range last {
		if n, _ := l["suppressed_failures"].(float64); n < 10 {
			t.Errorf("%s: suppressed_failures = %v, want >= 10", s, l["suppressed_failures"])
		}
		if l["level"] != "WARN" || !strings.Contains(l["error"].(string), "injected") {
			t.Errorf("%s: failure line %v, want level WARN and the error", s, l)
		}
	}

	r.SetError(nil)
	round(false)
	round(false)
	want(recovered, 1)
	want(failed, 2)
}

// TestShutdownHonoursDeadline: with the collector down and exports stuck in
// retry, Shutdown returns by its context's deadline with an error.
func TestShutdownHonoursDeadline(t *testing.T) {
	r := otlptest.Start(t)
	r.Stop()
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_SAMPLER": "always_on"})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		record(context.Background(), t, p, "pending")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.Shutdown(ctx)
	// Generous bound: without the deadline, the exporters' own 10 s timeout applies.
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Shutdown took %v with a 300ms deadline", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown err = %v, want context.DeadlineExceeded", err)
	}
	if again := p.Shutdown(context.Background()); !errors.Is(again, context.DeadlineExceeded) {
		t.Errorf("second Shutdown err = %v, want the first call's result", again)
	}
}
