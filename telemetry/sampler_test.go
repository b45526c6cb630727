package telemetry

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// ratioProvider is a ratioTracerProvider over an SDK provider that keeps
// every ended span in memory.
func ratioProvider(t *testing.T, ratio float64) (*ratioTracerProvider, *tracetest.InMemoryExporter) {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans), sdktrace.WithSampler(alwaysUnderParent()))
	t.Cleanup(func() { _ = sdk.Shutdown(context.Background()) })
	return newRatioTracerProvider(sdk, ratio), spans
}

func remoteParent(flags trace.TraceFlags) context.Context {
	return trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: flags, Remote: true}))
}

func TestRatioTracerDecisions(t *testing.T) {
	for _, tt := range []struct {
		name      string
		ratio     float64
		ctx       context.Context
		span      string
		opts      []trace.SpanStartOption
		recording bool
	}{
		{"probe root at ratio 0", 0, context.Background(), "probe peers", nil, true},
		{"payload root at ratio 0", 0, context.Background(), "GET /heartbeat/{size}", nil, false},
		{"name without the prefix", 0, context.Background(), "prober", nil, false},
		{"payload root at ratio 1", 1, context.Background(), "GET /heartbeat/{size}", nil, true},
		{"sampled parent at ratio 0", 0, remoteParent(trace.FlagsSampled), "GET /heartbeat/{size}", nil, true},
		{"unsampled parent at ratio 1", 1, remoteParent(0), "GET /heartbeat/{size}", nil, false},
		{"unsampled parent, probe", 1, remoteParent(0), "probe peers", nil, false},
		{"new root under a sampled parent at ratio 0", 0, remoteParent(trace.FlagsSampled), "GET /x", []trace.SpanStartOption{trace.WithNewRoot()}, false},
		{"new root under an unsampled parent at ratio 1", 1, remoteParent(0), "GET /x", []trace.SpanStartOption{trace.WithNewRoot()}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tp, spans := ratioProvider(t, tt.ratio)
			ctx, s := tp.Tracer("test").Start(tt.ctx, tt.span, tt.opts...)
			if s.IsRecording() != tt.recording {
				t.Fatalf("recording = %v, want %v", s.IsRecording(), tt.recording)
			}
			s.End()
			if got, want := len(spans.GetSpans()), map[bool]int{true: 1, false: 0}[tt.recording]; got != want {
				t.Errorf("%d spans exported, want %d", got, want)
			}
			if !tt.recording && ctx != tt.ctx {
				t.Error("a dropped span must hand back the caller's context")
			}
			if tt.recording && trace.SpanFromContext(ctx) != s {
				t.Error("a recorded span must be in the returned context")
			}
		})
	}
}

func TestRatioTracerKeepsTheRatioOfRoots(t *testing.T) {
	tp, spans := ratioProvider(t, 0.25)
	tr := tp.Tracer("test")
	const n = 20000
	for range n {
		_, s := tr.Start(context.Background(), "GET /heartbeat/{size}")
		s.End()
	}
	// Binomial(20000, 0.25): standard deviation about 61; ±6σ cannot flake.
	if got := len(spans.GetSpans()); got < 4630 || got > 5370 {
		t.Errorf("%d of %d roots kept, want about %d", got, n, n/4)
	}
}

func TestRatioTracerDropsWithoutAllocating(t *testing.T) {
	tp, _ := ratioProvider(t, 0)
	tr := tp.Tracer("test")
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	for _, ctx := range []context.Context{context.Background(), remoteParent(0)} {
		if n := testing.AllocsPerRun(100, func() {
			_, s := tr.Start(ctx, "GET /heartbeat/{size}", opts...)
			s.End()
		}); n != 0 {
			t.Errorf("%v allocations per dropped span, want 0", n)
		}
	}
}
