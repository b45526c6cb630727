package payload

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
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

// BenchmarkHandlerInstrumented is the hot path with the real SDK behind the
// API: metrics on every request, the default 1 % root sampler.
func BenchmarkHandlerInstrumented(b *testing.B) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))))
	s, err := New(Config{MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 20, Version: "v", Host: "h",
		MeterProvider: mp, TracerProvider: tp, Propagator: propagation.TraceContext{}})
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
}
