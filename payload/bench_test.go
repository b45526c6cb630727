package payload

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/heartbeat-sidecar/heartbeat/telemetry"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// discardWriter is a ResponseWriter that keeps its header map between
// requests, so the benchmark counts the handler's allocations only.
type discardWriter struct {
	h      http.Header
	status int
	n      int64
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(code int)        { d.status = code }
func (d *discardWriter) Write(p []byte) (int, error) { d.n += int64(len(p)); return len(p), nil }

// SetWriteDeadline is what net/http's writer offers http.ResponseController.
func (d *discardWriter) SetWriteDeadline(time.Time) error { return nil }

func BenchmarkHandler(b *testing.B) {
	// The no-op providers are what main passes when telemetry is off.
	s, err := New(Config{MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 20, Version: "v", Host: "h",
		MeterProvider: metricnoop.NewMeterProvider(), TracerProvider: tracenoop.NewTracerProvider(), Propagator: propagation.TraceContext{}})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 1024, 65536, 1 << 20} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/heartbeat/"+strconv.Itoa(n), nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				clear(w.h)
				s.ServeHTTP(w, req)
			}
			if w.status != http.StatusOK || w.n == 0 {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
		})
	}
}

// BenchmarkHandlerInstrumented is the hot path of nearly every request with
// the production providers from telemetry.Setup: metrics on, no trace context
// from the caller, the default sampler (1 % of roots, exported to an
// in-process OTLP receiver). Sampled requests are measured whole-server by
// make bench, with a receiver that does not share this process.
func BenchmarkHandlerInstrumented(b *testing.B) {
	r := otlptest.Start(b)
	for _, k := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"} {
		b.Setenv(k, "")
	}
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.URL())
	tel, err := telemetry.Setup(context.Background(), telemetry.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	s, err := New(Config{MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 20, Version: "v", Host: "h",
		MeterProvider: tel.MeterProvider, TracerProvider: tel.TracerProvider, Propagator: tel.Propagator})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/heartbeat/1024", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		s.ServeHTTP(w, req)
	}
	if w.status != http.StatusOK {
		b.Fatalf("status %d", w.status)
	}
}
