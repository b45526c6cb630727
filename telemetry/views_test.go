package telemetry

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// TestProbeInstrumentsKeepNoExemplars records on per-check instruments of
// every kind inside a sampled run, as the runner does, and checks that no
// exemplar crosses the wire, while an HTTP server histogram keeps its own.
func TestProbeInstrumentsKeepNoExemplars(t *testing.T) {
	r := otlptest.Start(t)
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL()})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)
	ctx, span := p.TracerProvider.Tracer("test").Start(context.Background(), "probe c1")
	if !span.SpanContext().IsSampled() {
		t.Fatal("a probe run must be sampled")
	}
	meter := p.MeterProvider.Meter("test")
	runs, _ := meter.Int64Counter("probe.runs")
	dur, _ := meter.Float64Histogram("probe.duration", metric.WithUnit("s"))
	server, _ := meter.Float64Histogram("http.server.request.duration", metric.WithUnit("s"))
	runs.Add(ctx, 1)
	dur.Record(ctx, 0.01)
	server.Record(ctx, 0.01)
	span.End()
	if err := flush(p); err != nil {
		t.Fatal(err)
	}
	if n := r.WaitForMetric(t, "probe.runs", 5*time.Second).Sum().DataPoints().At(0).Exemplars().Len(); n != 0 {
		t.Errorf("probe.runs: %d exemplars, want 0", n)
	}
	if n := r.WaitForMetric(t, "probe.duration", 5*time.Second).Histogram().DataPoints().At(0).Exemplars().Len(); n != 0 {
		t.Errorf("probe.duration: %d exemplars, want 0", n)
	}
	ex := r.WaitForMetric(t, "http.server.request.duration", 5*time.Second).Histogram().DataPoints().At(0).Exemplars()
	if ex.Len() != 1 || [16]byte(ex.At(0).TraceID()) != [16]byte(span.SpanContext().TraceID()) {
		t.Errorf("http.server.request.duration: %d exemplars, want the run's trace", ex.Len())
	}
}
