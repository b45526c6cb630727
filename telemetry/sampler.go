package telemetry

import (
	"context"
	"math"
	"math/rand/v2"
	"strings"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// probeSpanPrefix starts the name of every check run's root span (checks/runner.go).
const probeSpanPrefix = "probe "

// ratioTracerProvider takes the default sampler's decisions that drop a span
// before the SDK sees it. The SDK pays for a dropped span anyway: it builds
// the start config, generates IDs, runs the sampler and allocates a span and
// a context. Nearly every payload request is such a span, so on the hot path
// a dropped span must cost a random number and nothing else.
//
// The decisions are those of parentbased_traceidratio, with every check run
// kept (a run happens once per interval and its trace is the one an operator
// looks for, so the ratio meant for payload traffic must not thin it out):
//   - a sampled parent: the SDK records the span;
//   - an unsampled parent: dropped; the context and span returned are the
//     caller's, as a pass-through hop with the no-op tracer would return;
//   - a root named "probe …": the SDK records it;
//   - any other root: kept with probability ratio. A dropped root returns
//     the caller's context and the no-op span, so a span started under it
//     is a root again and decides afresh; the payload server starts none.
//
// The SDK behind it samples every span it is handed (ParentBased(AlwaysOn)),
// so a kept root is not thinned a second time.
type ratioTracerProvider struct {
	embedded.TracerProvider
	sdk *sdktrace.TracerProvider
	// keep is the probability of keeping a root, as a threshold on a
	// uniform random uint64; keepAll short-cuts ratio 1.
	keep    uint64
	keepAll bool
}

// newRatioTracerProvider wraps sdk, which must sample with ParentBased(AlwaysSample()).
func newRatioTracerProvider(sdk *sdktrace.TracerProvider, ratio float64) *ratioTracerProvider {
	p := &ratioTracerProvider{sdk: sdk}
	switch {
	case ratio >= 1:
		p.keepAll = true
	case ratio > 0:
		p.keep = uint64(ratio * math.MaxUint64)
	}
	return p
}

// Tracer returns a tracer that decides before the SDK's does.
func (p *ratioTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return &ratioTracer{sdk: p.sdk.Tracer(name, opts...), p: p}
}

type ratioTracer struct {
	embedded.Tracer
	sdk trace.Tracer
	p   *ratioTracerProvider
}

// Start records the span through the SDK, or drops it without allocating.
func (t *ratioTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	if parent := trace.SpanContextFromContext(ctx); parent.IsValid() && !newRoot(opts) {
		if parent.IsSampled() {
			return t.sdk.Start(ctx, name, opts...)
		}
		return ctx, trace.SpanFromContext(ctx)
	}
	if t.p.keepAll || strings.HasPrefix(name, probeSpanPrefix) || rand.Uint64() < t.p.keep {
		return t.sdk.Start(ctx, name, opts...)
	}
	return ctx, trace.SpanFromContext(context.Background())
}

// newRoot reports whether opts ask for a root span despite the context's parent.
func newRoot(opts []trace.SpanStartOption) bool {
	cfg := trace.NewSpanStartConfig(opts...)
	return cfg.NewRoot()
}

// alwaysUnderParent is the SDK sampler behind a ratioTracerProvider: the
// wrapper has already dropped what the ratio drops.
func alwaysUnderParent() sdktrace.Sampler { return sdktrace.ParentBased(sdktrace.AlwaysSample()) }
