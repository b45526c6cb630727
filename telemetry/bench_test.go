package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// The hot-path costs the payload server pays per request with these
// providers: one duration histogram point with a precomputed attribute set,
// and a server span under the default sampler. Run with -benchmem.

func benchProviders(b *testing.B, env map[string]string) *Providers {
	b.Helper()
	r := otlptest.Start(b)
	env["OTEL_EXPORTER_OTLP_ENDPOINT"] = r.URL()
	setEnv(b, env)
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

func BenchmarkRecordDuration(b *testing.B) {
	// Precomputed once, as a slice: passing a single option literal costs
	// an allocation per call for the variadic slice.
	set := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
		attribute.String("http.request.method", "GET"),
		attribute.String("http.route", "/heartbeat/{size}"),
		attribute.Int("http.response.status_code", 200)))}
	sampled := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
	for _, bc := range []struct {
		name string
		env  map[string]string
		ctx  context.Context
	}{
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, context.Background()},
		{"unsampled", map[string]string{}, context.Background()},
		{"sampled-exemplar", map[string]string{}, sampled},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := benchProviders(b, bc.env)
			h, err := p.MeterProvider.Meter("bench").Float64Histogram("http.server.request.duration", metric.WithUnit("s"))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.Record(bc.ctx, 0.0012, set...)
			}
		})
	}
}

func BenchmarkServerSpan(b *testing.B) {
	parent := func(flags trace.TraceFlags) context.Context {
		return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: flags, Remote: true}))
	}
	for _, bc := range []struct {
		name string
		env  map[string]string
		ctx  context.Context
	}{
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "true"}, context.Background()},
		{"default-sampler-root", map[string]string{}, context.Background()},
		{"unsampled-parent", map[string]string{}, parent(0)},
		{"sampled-parent-exported", map[string]string{}, parent(trace.FlagsSampled)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tracer := benchProviders(b, bc.env).TracerProvider.Tracer("bench")
			b.ReportAllocs()
			for b.Loop() {
				_, s := tracer.Start(bc.ctx, "GET /heartbeat/{size}", trace.WithSpanKind(trace.SpanKindServer))
				s.End()
			}
		})
	}
}
