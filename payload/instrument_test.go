package payload

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
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

// collect reads every metric the payload server recorded, failing on a
// scope other than the server's own.
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

// httpAttrs is the attribute set semconv asks for on an HTTP/1.1 request's
// metrics; route "" is an unmatched path, which has no http.route.
func httpAttrs(method, route string, status int) attribute.Set {
	kvs := []attribute.KeyValue{
		attribute.String("http.request.method", method),
		attribute.String("url.scheme", "http"),
		attribute.Int("http.response.status_code", status),
		attribute.String("network.protocol.version", "1.1"),
	}
	if route != "" {
		kvs = append(kvs, attribute.String("http.route", route))
	}
	return attribute.NewSet(kvs...)
}

// sdkDefaultBounds are the SDK's explicit bucket boundaries; the telemetry
// package's views replace them in production.
var sdkDefaultBounds = []float64{0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000}

// sizePoint is the histogram point of body sizes vs, all with attrs.
func sizePoint(attrs attribute.Set, vs ...int64) metricdata.HistogramDataPoint[int64] {
	dp := metricdata.HistogramDataPoint[int64]{Attributes: attrs, Bounds: sdkDefaultBounds, BucketCounts: make([]uint64, len(sdkDefaultBounds)+1)}
	for _, v := range vs {
		dp.Count++
		dp.Sum += v
		dp.BucketCounts[sort.SearchFloat64s(sdkDefaultBounds, float64(v))]++
	}
	dp.Min, dp.Max = metricdata.NewExtrema(slices.Min(vs)), metricdata.NewExtrema(slices.Max(vs))
	return dp
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
	getOK, getBad := httpAttrs("GET", RouteHeartbeat, 200), httpAttrs("GET", RouteHeartbeat, 400)
	getNone, postOK := httpAttrs("GET", "", 404), httpAttrs("POST", RouteHeartbeat, 200)
	// Durations vary: compare the points' attribute sets (no raw url.path:
	// bounded cardinality) with values ignored, then the counts.
	dur := metricdata.Metrics{
		Name: "http.server.request.duration", Description: "Duration of HTTP server requests.", Unit: "s",
		Data: metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[float64]{
			{Attributes: getOK, Count: 3}, {Attributes: getBad, Count: 1}, {Attributes: getNone, Count: 1}, {Attributes: postOK, Count: 1},
		}},
	}
	metricdatatest.AssertEqual(t, dur, ms[dur.Name], metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreValue())
	for _, want := range dur.Data.(metricdata.Histogram[float64]).DataPoints {
		for _, got := range ms[dur.Name].Data.(metricdata.Histogram[float64]).DataPoints {
			if got.Attributes.Equals(&want.Attributes) && got.Count != want.Count {
				t.Errorf("%s %v: count %d, want %d", dur.Name, want.Attributes.ToSlice(), got.Count, want.Count)
			}
		}
	}

	// Body sizes are exact: the request body of the one POST, and the
	// response bodies of the 200s (error bodies are the server's own text).
	reqSize := metricdata.Metrics{
		Name: "http.server.request.body.size", Description: "Size of HTTP server request bodies.", Unit: "By",
		Data: metricdata.Histogram[int64]{Temporality: metricdata.CumulativeTemporality, DataPoints: []metricdata.HistogramDataPoint[int64]{sizePoint(postOK, 5000)}},
	}
	metricdatatest.AssertEqual(t, reqSize, ms[reqSize.Name], metricdatatest.IgnoreTimestamp())
	for _, want := range []metricdata.HistogramDataPoint[int64]{sizePoint(getOK, 17, 1024, 1024), sizePoint(postOK, 1)} {
		got, ok := sizePointOf(ms["http.server.response.body.size"], want.Attributes)
		if !ok {
			t.Errorf("no response body size point for %v", want.Attributes.ToSlice())
			continue
		}
		metricdatatest.AssertEqual(t, want, got, metricdatatest.IgnoreTimestamp())
	}
}

// sizePointOf finds the point of an int64 histogram with exactly attrs.
func sizePointOf(m metricdata.Metrics, attrs attribute.Set) (metricdata.HistogramDataPoint[int64], bool) {
	h, _ := m.Data.(metricdata.Histogram[int64])
	for _, dp := range h.DataPoints {
		if dp.Attributes.Equals(&attrs) {
			return dp, true
		}
	}
	return metricdata.HistogramDataPoint[int64]{}, false
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
