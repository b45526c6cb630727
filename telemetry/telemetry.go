// Package telemetry is the one place where the OpenTelemetry SDK and its
// exporters are set up. Everything else in heartbeat uses only the OTel API
// with the providers returned by Setup.
//
// Configuration comes from the standard OTEL_* environment variables; the
// SDK and the exporters read most of them themselves (endpoint, headers,
// timeout, compression, TLS, sampler, metric interval, batch sizes, exemplar
// filter). Setup adds what the SDK leaves to the application: the choice of
// exporter per signal (otlp, console, none), the OTLP protocol (grpc or
// http/protobuf), OTEL_SDK_DISABLED, and the defaults below.
//
// Defaults that differ from a stock SDK:
//   - A signal with neither OTEL_<SIGNAL>_EXPORTER nor an OTLP endpoint
//     variable set is not exported, so a sidecar without a collector stays
//     quiet; Setup logs one line saying how to turn export on.
//   - With OTEL_TRACES_SAMPLER unset the sampler is
//     parentbased_traceidratio with ratio OTEL_TRACES_SAMPLER_ARG or 0.01:
//     requests carrying a sampled traceparent are always traced, and 1 % of
//     the rest.
//   - OTEL_BLRP_MAX_QUEUE_SIZE defaults to 128, not 2048, and
//     OTEL_BLRP_MAX_EXPORT_BATCH_SIZE to 64, not 512: the log batch
//     processor preallocates its queue and its export batch (about 600
//     bytes a record, pointers the garbage collector scans on every cycle),
//     and heartbeat logs little (alerts, state changes).
//
// With the collector down nothing blocks a caller: spans (at most
// OTEL_BSP_MAX_QUEUE_SIZE, default 2048) and log records (at most 128) wait
// in bounded queues, and the excess is dropped and counted. Each OTLP export
// gives up after OTEL_EXPORTER_OTLP_TIMEOUT (default 10 s, retries
// included); failures are logged at most once a minute per signal and
// counted in heartbeat.telemetry.export.failures and
// heartbeat.telemetry.export.dropped (attribute signal). gRPC reconnects
// with a backoff capped at 5 s, so export resumes soon after the collector
// returns.
//
// Setup sets no OTel globals, not even the error handler: the caller passes
// the providers explicitly.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// scopeName is the instrumentation scope of the self-metrics.
const scopeName = "github.com/heartbeat-sidecar/heartbeat/telemetry"

// Options configures Setup. Everything else comes from the environment.
type Options struct {
	// ServiceVersion is the service.version resource attribute; omitted if empty.
	ServiceVersion string
	// Logger receives the startup line and rate-limited export errors; slog.Default() if nil.
	Logger *slog.Logger

	// Test hooks; zero values mean the production behaviour.
	now               func() time.Time // clock of the error-log rate limit
	errorLogInterval  time.Duration    // minimum gap between failure lines per signal
	reconnectMaxDelay time.Duration    // cap of the gRPC reconnect backoff
	console           io.Writer        // where the console exporters write
}

// Providers holds the configured providers, as API types so the rest of the program cannot reach into the SDK.
type Providers struct {
	// MeterProvider creates meters; a no-op provider when metrics are off.
	MeterProvider metric.MeterProvider
	// TracerProvider creates tracers; a no-op provider when traces are off.
	TracerProvider trace.TracerProvider
	// LoggerProvider creates OTel loggers; a no-op provider when logs are off.
	LoggerProvider log.LoggerProvider
	// Propagator injects and extracts W3C traceparent/tracestate and baggage.
	Propagator propagation.TextMapPropagator

	components   []component
	shutdownOnce sync.Once
	shutdownErr  error
}

// component is one enabled signal's SDK provider.
type component struct {
	signal   string
	stats    *signalStats
	shutdown func(context.Context) error
	flush    func(context.Context) error
}

// Setup builds the providers from the environment without blocking; the caller must Shutdown them.
func Setup(ctx context.Context, opts Options) (*Providers, error) {
	// Nothing here waits on the network: exporters connect lazily and
	// reconnect by themselves.
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.errorLogInterval <= 0 {
		opts.errorLogInterval = errorLogInterval
	}
	if opts.reconnectMaxDelay <= 0 {
		opts.reconnectMaxDelay = defaultReconnectMaxDelay
	}
	if opts.console == nil {
		opts.console = os.Stdout
	}

	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	p := &Providers{
		MeterProvider:  metricnoop.NewMeterProvider(),
		TracerProvider: tracenoop.NewTracerProvider(),
		LoggerProvider: lognoop.NewLoggerProvider(),
		Propagator:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
	}
	if cfg.disabled {
		opts.Logger.Info("telemetry is disabled by " + envSDKDisabled)
		return p, nil
	}
	if !cfg.traces.enabled() && !cfg.metrics.enabled() && !cfg.logs.enabled() {
		if !cfg.explicitExport {
			opts.Logger.Info("telemetry export is off; set " + envOTLPEndpoint +
				" (e.g. http://localhost:4317) to send metrics, traces and logs to an OpenTelemetry Collector")
		} else {
			opts.Logger.Info("telemetry export is off: every signal's exporter is none")
		}
		return p, nil
	}

	res, err := newResource(ctx, opts.ServiceVersion, opts.Logger)
	if err != nil {
		return nil, err
	}
	b := &builder{cfg: cfg, opts: opts, res: res, stats: &stats{}}
	if err := b.build(ctx, p); err != nil {
		// Release the connections of whatever was built before the failure.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = p.Shutdown(sctx)
		return nil, err
	}
	opts.Logger.Info("telemetry export is on",
		"traces", cfg.traces.describe(), "metrics", cfg.metrics.describe(), "logs", cfg.logs.describe(),
		"sampler", cfg.samplerDescription())
	return p, nil
}

// Shutdown flushes and stops all providers by ctx's deadline; later calls return the first call's result.
func (p *Providers) Shutdown(ctx context.Context) error {
	// In parallel, so that a slow signal does not eat the others' time;
	// items still queued at the deadline are lost.
	p.shutdownOnce.Do(func() {
		p.shutdownErr = p.each(ctx, "shut down", func(c component) func(context.Context) error { return c.shutdown })
	})
	return p.shutdownErr
}

// ForceFlush exports everything recorded so far within ctx's deadline, sparing tests the export intervals.
func (p *Providers) ForceFlush(ctx context.Context) error {
	return p.each(ctx, "flush", func(c component) func(context.Context) error { return c.flush })
}

// each runs op on every component in parallel. The guards hide export
// errors from the SDK, so a failure is detected from the failure count.
func (p *Providers) each(ctx context.Context, what string, op func(component) func(context.Context) error) error {
	errs := make([]error, len(p.components))
	var wg sync.WaitGroup
	for i, c := range p.components {
		wg.Go(func() {
			before := c.stats.failedExports.Load()
			err := op(c)(ctx)
			if c.stats.failedExports.Load() != before {
				if last := c.stats.lastErr.Load(); last != nil {
					err = errors.Join(err, fmt.Errorf("export failed: %w", *last))
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("telemetry: %s %s: %w", what, c.signal, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// builder creates the SDK providers for Setup.
type builder struct {
	cfg   config
	opts  Options
	res   *resource.Resource
	stats *stats
}

func (b *builder) build(ctx context.Context, p *Providers) error {
	if b.cfg.traces.enabled() {
		tp, err := b.tracerProvider(ctx)
		if err != nil {
			return err
		}
		p.TracerProvider = tp
		if r := b.cfg.defaultSamplerRatio; r != nil {
			p.TracerProvider = newRatioTracerProvider(tp, *r)
		}
		p.components = append(p.components, component{signalTraces, &b.stats.traces, tp.Shutdown, tp.ForceFlush})
	}
	if b.cfg.metrics.enabled() {
		mp, err := b.meterProvider(ctx)
		if err != nil {
			return err
		}
		p.MeterProvider = mp
		p.components = append(p.components, component{signalMetrics, &b.stats.metrics, mp.Shutdown, mp.ForceFlush})
		if err := b.stats.register(mp.Meter(scopeName), b.cfg.traces.enabled(), b.cfg.logs.enabled()); err != nil {
			return fmt.Errorf("telemetry: register self-metrics: %w", err)
		}
	}
	if b.cfg.logs.enabled() {
		lp, err := b.loggerProvider(ctx)
		if err != nil {
			return err
		}
		p.LoggerProvider = lp
		p.components = append(p.components, component{signalLogs, &b.stats.logs, lp.Shutdown, lp.ForceFlush})
	}
	return nil
}

// guard returns the accounting for one exporter of a signal. Each exporter
// has its own rate limit so that a working console exporter does not mark
// a failing OTLP one as recovered.
func (b *builder) guard(signal, kind string, st *signalStats, inflight *atomic.Int64) *guard {
	return &guard{
		stats:    st,
		inflight: inflight,
		log: &errorLog{
			logger:   b.opts.Logger.With("exporter", kind),
			signal:   signal,
			interval: b.opts.errorLogInterval,
			now:      b.opts.now,
		},
	}
}

func (b *builder) tracerProvider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(b.res)}
	if b.cfg.defaultSamplerRatio != nil {
		// Only when OTEL_TRACES_SAMPLER is unset: options override the
		// SDK's env handling. The ratio is applied in front of the SDK.
		opts = append(opts, sdktrace.WithSampler(alwaysUnderParent()))
	}
	for _, kind := range b.cfg.traces.exporters {
		exp, err := b.spanExporter(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("telemetry: %s span exporter: %w", kind, err)
		}
		inflight := new(atomic.Int64)
		g := b.guard(signalTraces, kind, &b.stats.traces, inflight)
		bsp := sdktrace.NewBatchSpanProcessor(&spanExporter{exp, g},
			sdktrace.WithMaxQueueSize(b.cfg.traces.queueSize), sdktrace.WithMaxExportBatchSize(b.cfg.traces.batchSize))
		opts = append(opts, sdktrace.WithSpanProcessor(&spanGate{
			SpanProcessor: bsp, gate: gate{limit: int64(b.cfg.traces.queueSize), inflight: inflight, stats: &b.stats.traces},
		}))
	}
	return sdktrace.NewTracerProvider(opts...), nil
}

func (b *builder) meterProvider(ctx context.Context) (*sdkmetric.MeterProvider, error) {
	opts := []sdkmetric.Option{sdkmetric.WithResource(b.res)}
	opts = append(opts, views()...)
	for _, kind := range b.cfg.metrics.exporters {
		exp, err := b.metricExporter(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("telemetry: %s metric exporter: %w", kind, err)
		}
		g := b.guard(signalMetrics, kind, &b.stats.metrics, nil)
		// The reader takes OTEL_METRIC_EXPORT_INTERVAL/TIMEOUT from the env;
		// the timeout applies to each batch.
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(&metricExporter{exp, g},
			sdkmetric.WithMaxExportBatchSize(maxExportPoints))))
	}
	return sdkmetric.NewMeterProvider(opts...), nil
}

func (b *builder) loggerProvider(ctx context.Context) (*sdklog.LoggerProvider, error) {
	opts := []sdklog.LoggerProviderOption{sdklog.WithResource(b.res)}
	for _, kind := range b.cfg.logs.exporters {
		exp, err := b.logExporter(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("telemetry: %s log exporter: %w", kind, err)
		}
		inflight := new(atomic.Int64)
		g := b.guard(signalLogs, kind, &b.stats.logs, inflight)
		bp := sdklog.NewBatchProcessor(&logExporter{exp, g},
			sdklog.WithMaxQueueSize(b.cfg.logs.queueSize), sdklog.WithExportMaxBatchSize(b.cfg.logs.batchSize))
		opts = append(opts, sdklog.WithProcessor(&logGate{
			Processor: bp, gate: gate{limit: int64(b.cfg.logs.queueSize), inflight: inflight, stats: &b.stats.logs},
		}))
	}
	return sdklog.NewLoggerProvider(opts...), nil
}

// samplerDescription renders the effective sampler for the startup log line.
func (c config) samplerDescription() string {
	if c.defaultSamplerRatio != nil {
		return samplerParentBasedTI + "(" + strconv.FormatFloat(*c.defaultSamplerRatio, 'g', -1, 64) + "), probe runs always"
	}
	s := os.Getenv(envSampler)
	if a := os.Getenv(envSamplerArg); a != "" {
		s += "(" + a + ")"
	}
	return s
}

// redactURL hides a password in an endpoint URL before it is logged.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
