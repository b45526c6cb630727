package telemetry

import (
	"context"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// TestHTTPHistograms records the way the payload server will (API only,
// precomputed attribute sets, default sampler) and checks the wire: semconv
// bucket boundaries from the provider's views, and a trace-based exemplar on
// the point of the sampled request only.
func TestHTTPHistograms(t *testing.T) {
	r := otlptest.Start(t)
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL()}) // default sampler
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)

	meter := p.MeterProvider.Meter("github.com/heartbeat-sidecar/heartbeat/payload")
	duration, err := meter.Float64Histogram("http.server.request.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	bodySize, err := meter.Int64Histogram("http.server.response.body.size", metric.WithUnit("By"))
	if err != nil {
		t.Fatal(err)
	}
	attrs := func(status int) metric.MeasurementOption {
		return metric.WithAttributeSet(attribute.NewSet(
			attribute.String("http.request.method", "GET"),
			attribute.String("http.route", "/heartbeat/{size}"),
			attribute.Int("http.response.status_code", status)))
	}
	ok, notFound := attrs(200), attrs(404)

	// A probe's request: the caller sampled it, so the server span is sampled.
	sampledParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xaa, 1}, SpanID: trace.SpanID{0xbb, 1}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx, span := p.TracerProvider.Tracer("test").Start(
		trace.ContextWithRemoteSpanContext(context.Background(), sampledParent), "GET /heartbeat/{size}",
		trace.WithSpanKind(trace.SpanKindServer))
	duration.Record(ctx, 0.003, ok)
	bodySize.Record(ctx, 65536, ok)
	span.End()

	// Unsampled traffic: same histogram, another status, no exemplar wanted.
	unsampledParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{0xcc, 1}, SpanID: trace.SpanID{0xdd, 1}, Remote: true})
	for range 3 {
		ctx, span := p.TracerProvider.Tracer("test").Start(
			trace.ContextWithRemoteSpanContext(context.Background(), unsampledParent), "GET /heartbeat/{size}")
		duration.Record(ctx, 0.2, notFound)
		span.End()
	}
	if err := flush(p); err != nil {
		t.Fatal(err)
	}

	m := r.WaitForMetric(t, "http.server.request.duration", 5*time.Second)
	if m.Unit() != "s" {
		t.Errorf("unit = %q, want s", m.Unit())
	}
	wantBounds := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	dps := m.Histogram().DataPoints()
	if dps.Len() != 2 {
		t.Fatalf("%d data points, want 2 (status 200 and 404)", dps.Len())
	}
	for _, dp := range dps.All() {
		if got := dp.ExplicitBounds().AsRaw(); !slices.Equal(got, wantBounds) {
			t.Errorf("bounds = %v, want %v", got, wantBounds)
		}
		status, _ := dp.Attributes().Get("http.response.status_code")
		switch status.Int() {
		case 200:
			if dp.Count() != 1 || dp.Exemplars().Len() != 1 {
				t.Fatalf("status 200: count %d, %d exemplars; want 1, 1", dp.Count(), dp.Exemplars().Len())
			}
			ex := dp.Exemplars().At(0)
			if [16]byte(ex.TraceID()) != [16]byte(span.SpanContext().TraceID()) ||
				[8]byte(ex.SpanID()) != [8]byte(span.SpanContext().SpanID()) {
				t.Errorf("exemplar trace %s span %s, want the server span %s %s",
					ex.TraceID(), ex.SpanID(), span.SpanContext().TraceID(), span.SpanContext().SpanID())
			}
		case 404:
			if dp.Count() != 3 || dp.Exemplars().Len() != 0 {
				t.Errorf("status 404: count %d, %d exemplars; want 3, 0 (unsampled)", dp.Count(), dp.Exemplars().Len())
			}
		default:
			t.Errorf("unexpected status attribute %v", status.AsRaw())
		}
	}

	sizes := r.WaitForMetric(t, "http.server.response.body.size", 5*time.Second)
	bounds := sizes.Histogram().DataPoints().At(0).ExplicitBounds().AsRaw()
	if !slices.Contains(bounds, 1<<20) || !slices.Contains(bounds, 65536) {
		t.Errorf("body size bounds = %v, want byte-scale boundaries up to 1 GiB", bounds)
	}
}
