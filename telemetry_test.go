package main

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// otelEnv points every signal at r and clears what the machine may have set.
func otelEnv(t *testing.T, endpoint string) {
	t.Helper()
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER",
		"OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"} {
		t.Setenv(k, "")
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
}

func get(t *testing.T, c *http.Client, req *http.Request) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d", req.URL, resp.StatusCode)
	}
}

func TestPayloadTelemetryCrossesTheWire(t *testing.T) {
	r := otlptest.Start(t)
	otelEnv(t, r.URL())
	t.Setenv("POD_NAME", "web-0")
	t.Setenv("POD_NAMESPACE", "shop")
	addr, stop, errc := startServe(t, defaultOptions())

	const n = 25
	for range n {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/heartbeat/1024", nil)
		get(t, http.DefaultClient, req)
	}
	// A probe from another process, with a sampled traceparent.
	caller := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	ctx, parent := caller.Tracer("probe").Start(context.Background(), "probe peer")
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/heartbeat/65536", nil)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	get(t, http.DefaultClient, req)
	parent.End()

	stop() // shutdown flushes the providers
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}

	spans := r.WaitForSpans(t, 1, 10*time.Second)
	var server *otlptest.Span
	for i := range spans {
		if spans[i].TraceID() == [16]byte(parent.SpanContext().TraceID()) {
			server = &spans[i]
		}
	}
	if server == nil {
		t.Fatalf("no span in the probe's trace among %d spans", len(spans))
	}
	if server.ParentSpanID() != [8]byte(parent.SpanContext().SpanID()) {
		t.Errorf("server span's parent %s, want the caller's span %s", server.ParentSpanID(), parent.SpanContext().SpanID())
	}
	if server.Name() != "GET /heartbeat/{size}" {
		t.Errorf("span name %q", server.Name())
	}
	for k, want := range map[string]string{"service.name": "heartbeat", "service.version": version, "k8s.pod.name": "web-0", "k8s.namespace.name": "shop"} {
		if v, ok := server.Resource.Attributes().Get(k); !ok || v.AsString() != want {
			t.Errorf("resource %s = %q, want %q", k, v.AsString(), want)
		}
	}

	m := r.WaitForMetricFunc(t, "http.server.request.duration", 10*time.Second, func(m otlptest.Metric) bool {
		var total uint64
		for _, dp := range m.Histogram().DataPoints().All() {
			total += dp.Count()
		}
		return total == n+1
	})
	if m.Unit() != "s" {
		t.Errorf("unit %q", m.Unit())
	}
	var withExemplar int
	for _, dp := range m.Histogram().DataPoints().All() {
		route, _ := dp.Attributes().Get("http.route")
		if route.AsString() != "/heartbeat/{size}" {
			t.Errorf("http.route %q", route.AsString())
		}
		withExemplar += dp.Exemplars().Len()
	}
	if withExemplar == 0 {
		t.Error("the sampled request left no exemplar")
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

func TestServingGoesOnWithCollectorDown(t *testing.T) {
	requests := 100_000
	if testing.Short() {
		requests = 10_000
	}
	r := otlptest.Start(t)
	r.Stop() // the collector is down from the start
	otelEnv(t, r.URL())
	// Every request sampled: the worst case for queues.
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	addr, stop, errc := startServe(t, defaultOptions())

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	load := func(count int) {
		var wg sync.WaitGroup
		per := count / 8
		for range 8 {
			wg.Go(func() {
				for range per {
					req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/heartbeat/1024", nil)
					get(t, client, req)
				}
			})
		}
		wg.Wait()
	}
	load(requests / 10) // warm-up: queues fill, connections and buffers exist
	before := heapInUse()
	load(requests)
	after := heapInUse()
	t.Logf("heap in use: %.1f MB after warm-up, %.1f MB after %d more requests", float64(before)/1e6, float64(after)/1e6, requests)
	if after > before+4<<20 {
		t.Errorf("heap grew from %d to %d bytes with the collector down", before, after)
	}

	r.Restart(t) // the collector comes back: export resumes by itself
	r.WaitForMetric(t, "http.server.request.duration", 20*time.Second)
	r.WaitForSpans(t, 1, 20*time.Second)
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestServingGoesOnWithCollectorBlackholed(t *testing.T) {
	hole, _ := testkit.BlackHole(t)
	otelEnv(t, "http://"+hole)
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	t.Setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "500")
	o := defaultOptions()
	o.shutdownTimeout = 2 * time.Second
	addr, stop, errc := startServe(t, o)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	load := func() {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 2500 {
					req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/heartbeat/1024", nil)
					get(t, client, req) // fails the test on any error or non-200
				}
			})
		}
		wg.Wait()
	}
	// The first half fills the bounded export queues (legitimately a few
	// MiB of spans); the second half must not add to what they hold.
	load()
	filled := heapInUse()
	load()
	if after := heapInUse(); after > filled+2<<20 {
		t.Errorf("heap grew from %d to %d bytes over the second 10,000 requests with the collector black-holed", filled, after)
	}
	// A connection the transport dialed but never used is StateNew on the
	// server, which Shutdown waits on for 5 s; the clients are done, so close
	// what they hold, as departing clients do.
	client.CloseIdleConnections()
	// Shutdown must not wait on the silent collector beyond the flush budget.
	start := time.Now()
	stop()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve hung on shutdown with the collector black-holed")
	}
	if d := time.Since(start); d > 3*o.shutdownTimeout {
		t.Errorf("shutdown took %s with a %s budget", d, o.shutdownTimeout)
	}
}
