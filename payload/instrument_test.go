package payload

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// instrumented starts a server wired to in-memory SDK readers: the SDK is the
// real one, only the export step is local.
func instrumented(t *testing.T, sampler sdktrace.Sampler) (*httptest.Server, *sdkmetric.ManualReader, *tracetest.InMemoryExporter, *sdktrace.TracerProvider) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithSampler(sampler))
	s, err := New(Config{
		MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 20, Version: "v", Host: "h",
		MeterProvider: mp, TracerProvider: tp,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, reader, spans, tp
}

func do(t *testing.T, req *http.Request) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != instrumentationName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func TestMetricsFollowSemanticConventions(t *testing.T) {
	ts, reader, _, _ := instrumented(t, sdktrace.NeverSample())
	for _, p := range []string{"/heartbeat/17", "/heartbeat/1024", "/heartbeat/1024", "/heartbeat/0", "/nope/123"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+p, nil)
		do(t, req)
	}
	post, _ := http.NewRequest(http.MethodPost, ts.URL+"/heartbeat/1", io.NopCloser(&countingReader{left: 5000}))
	post.ContentLength = 5000
	do(t, post)

	ms := collect(t, reader)
	dur, ok := ms["http.server.request.duration"]
	if !ok {
		t.Fatalf("no http.server.request.duration among %v", keys(ms))
	}
	if dur.Unit != "s" {
		t.Errorf("unit %q, want s", dur.Unit)
	}
	hist := dur.Data.(metricdata.Histogram[float64])
	counts := map[string]uint64{}
	for _, dp := range hist.DataPoints {
		route, _ := dp.Attributes.Value("http.route")
		status, _ := dp.Attributes.Value("http.response.status_code")
		method, _ := dp.Attributes.Value("http.request.method")
		counts[method.AsString()+" "+route.AsString()+" "+status.String()] += dp.Count
		if v, ok := dp.Attributes.Value("url.path"); ok {
			t.Errorf("raw path %q on a metric: unbounded cardinality", v.AsString())
		}
	}
	want := map[string]uint64{
		"GET /heartbeat/{size} 200":  3,
		"GET /heartbeat/{size} 400":  1,
		"GET  404":                   1, // unmatched: no http.route at all
		"POST /heartbeat/{size} 200": 1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%q: count %d, want %d (all: %v)", k, counts[k], v, counts)
		}
	}

	resp := ms["http.server.response.body.size"].Data.(metricdata.Histogram[int64])
	var sum int64
	for _, dp := range resp.DataPoints {
		if s, _ := dp.Attributes.Value("http.response.status_code"); s.AsInt64() == 200 {
			sum += dp.Sum
		}
	}
	if sum != 17+1024+1024+1 {
		t.Errorf("response body bytes of 200s: %d, want %d", sum, 17+1024+1024+1)
	}
	reqSize := ms["http.server.request.body.size"].Data.(metricdata.Histogram[int64])
	if len(reqSize.DataPoints) != 1 || reqSize.DataPoints[0].Sum != 5000 {
		t.Errorf("request body size: %+v, want one point summing 5000", reqSize.DataPoints)
	}
}

func keys(m map[string]metricdata.Metrics) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestServerSpanJoinsCallersTrace(t *testing.T) {
	ts, reader, spans, tp := instrumented(t, sdktrace.ParentBased(sdktrace.NeverSample()))
	// The caller is another process: its span comes from its own provider.
	caller := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	ctx, parent := caller.Tracer("probe").Start(context.Background(), "probe peers")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/heartbeat/65536", nil)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	do(t, req)
	parent.End()

	// An unsampled root request must not produce a span.
	plain, _ := http.NewRequest(http.MethodGet, ts.URL+"/heartbeat/1", nil)
	do(t, plain)
	_ = tp.ForceFlush(context.Background())

	got := spans.GetSpans()
	if len(got) != 1 {
		t.Fatalf("%d spans, want exactly the one for the traced request", len(got))
	}
	s := got[0]
	if s.Name != "GET /heartbeat/{size}" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v", s.Name, s.SpanKind)
	}
	if s.SpanContext.TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("trace id %s, want the caller's %s", s.SpanContext.TraceID(), parent.SpanContext().TraceID())
	}
	if s.Parent.SpanID() != parent.SpanContext().SpanID() {
		t.Errorf("parent span id %s, want the caller's %s", s.Parent.SpanID(), parent.SpanContext().SpanID())
	}
	attrs := attribute.NewSet(s.Attributes...)
	if v, _ := attrs.Value("http.route"); v.AsString() != RouteHeartbeat {
		t.Errorf("http.route %q", v.AsString())
	}
	if v, _ := attrs.Value("http.response.status_code"); v.AsInt64() != 200 {
		t.Errorf("status attribute %v", v.String())
	}

	// The sampled request's duration point links to its trace through an exemplar.
	var found bool
	for _, dp := range collect(t, reader)["http.server.request.duration"].Data.(metricdata.Histogram[float64]).DataPoints {
		for _, ex := range dp.Exemplars {
			if trace.TraceID(ex.TraceID) == parent.SpanContext().TraceID() {
				found = true
			}
		}
	}
	if !found {
		t.Error("no exemplar carries the sampled request's trace id")
	}
}
