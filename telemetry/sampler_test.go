package telemetry

import (
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestProbeSamplerKeepsEveryProbeRun(t *testing.T) {
	s := sdktrace.ParentBased(probeSampler{ratio: sdktrace.TraceIDRatioBased(0)})
	for _, tt := range []struct {
		name string
		want sdktrace.SamplingDecision
	}{
		{"probe peers", sdktrace.RecordAndSample},
		{"GET /heartbeat/{size}", sdktrace.Drop},
		{"prober", sdktrace.Drop},
	} {
		got := s.ShouldSample(sdktrace.SamplingParameters{Name: tt.name, TraceID: trace.TraceID{1}, Kind: trace.SpanKindClient})
		if got.Decision != tt.want {
			t.Errorf("%q: decision %v, want %v", tt.name, got.Decision, tt.want)
		}
	}
}
