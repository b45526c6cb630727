package telemetry

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// This file keeps a dead or slow collector from hurting the process.
//
// Every exporter is wrapped in a guard that counts what was lost, logs
// failures through our slog Logger at most once per interval per signal, and
// then returns nil. Returning nil matters: the SDK's batch processors and the
// periodic reader pass export errors to the global otel.Handle, whose default
// prints every failed batch to stderr. Swallowing the error in the guard
// keeps the rate limit per signal and per Providers, without installing a
// process-wide error handler (none of the SDK's processors retry on error,
// so nothing is lost by hiding it from them). The few errors that still
// reach otel.Handle (partial-success responses, malformed OTEL_* values the
// exporters parse themselves) are rare and keep the SDK default: stderr.
//
// Traces and logs also pass through a gate in front of the SDK batch
// processor. The gate counts the items it has handed on and not yet seen
// exported (queued, batched or in an export call) and drops new items once
// that reaches the queue bound, so the bound covers everything held, not
// just the queue. The SDK processors would drop them anyway,
// but they only report drops through the global MeterProvider or the global
// debug logger, which we do not install; the gate makes the drop count exact.

// Self-metric names, exported on the same MeterProvider.
const (
	metricExportFailures = "heartbeat.telemetry.export.failures"
	metricExportDropped  = "heartbeat.telemetry.export.dropped"
	errorLogInterval     = time.Minute
)

// signalStats are the loss counters of one signal, shared by its guards and
// gates and read by the self-metric callback.
type signalStats struct {
	failedItems   atomic.Int64 // items in exports that failed
	droppedItems  atomic.Int64 // items refused because the queue was full
	failedExports atomic.Int64 // failed export calls, for Shutdown's report
	lastErr       atomic.Pointer[error]
}

// stats holds the counters of all three signals.
type stats struct {
	traces, metrics, logs signalStats
}

// register exposes the counters of the enabled signals as observable
// counters on meter.
func (s *stats) register(meter metric.Meter, traces, logs bool) error {
	failures, err := meter.Int64ObservableCounter(metricExportFailures,
		metric.WithUnit("{item}"),
		metric.WithDescription("Telemetry items (spans, metric data points, log records) lost in failed exports."))
	if err != nil {
		return err
	}
	dropped, err := meter.Int64ObservableCounter(metricExportDropped,
		metric.WithUnit("{item}"),
		metric.WithDescription("Telemetry items (spans, log records) dropped before export because the queue was full."))
	if err != nil {
		return err
	}
	type row struct {
		s    *signalStats
		opts metric.ObserveOption
	}
	signal := func(name string) metric.ObserveOption {
		return metric.WithAttributeSet(attribute.NewSet(attribute.String("signal", name)))
	}
	rows := []row{{&s.metrics, signal(signalMetrics)}}
	if traces {
		rows = append(rows, row{&s.traces, signal(signalTraces)})
	}
	if logs {
		rows = append(rows, row{&s.logs, signal(signalLogs)})
	}
	_, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, r := range rows {
			o.ObserveInt64(failures, r.s.failedItems.Load(), r.opts)
			if r.s != &s.metrics {
				o.ObserveInt64(dropped, r.s.droppedItems.Load(), r.opts)
			}
		}
		return nil
	}, failures, dropped)
	return err
}

// errorLog logs export failures of one signal at most once per interval.
type errorLog struct {
	logger   *slog.Logger
	signal   string
	interval time.Duration
	now      func() time.Time

	mu         sync.Mutex
	last       time.Time // when the last failure line was written
	logged     bool      // a failure line has been written since the last recovery line
	suppressed int       // failures since the last failure line
}

// failure records a failed export of items and logs it unless a line for
// this signal was written less than interval ago.
func (l *errorLog) failure(err error, items int) {
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() && now.Sub(l.last) < l.interval {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.logged, l.suppressed = now, true, 0
	l.mu.Unlock()
	l.logger.Warn("telemetry export failed; the data is dropped",
		"signal", l.signal, "items", items, "error", err,
		"suppressed_failures", suppressed, "next_report_after", l.interval)
}

// success logs one recovery line after a failure line, so the operator
// knows the earlier warning is over.
func (l *errorLog) success() {
	l.mu.Lock()
	if !l.logged {
		l.mu.Unlock()
		return
	}
	l.logged = false
	suppressed := l.suppressed
	l.mu.Unlock()
	l.logger.Info("telemetry export recovered", "signal", l.signal, "failures_since_last_report", suppressed)
}

// guard does the accounting shared by the three exporter wrappers.
type guard struct {
	stats    *signalStats
	log      *errorLog
	inflight *atomic.Int64 // nil for metrics, which are not queued
}

// done accounts for an export of n items that returned err, and returns the
// error to hand to the SDK: always nil, see the file comment.
func (g *guard) done(n int, err error) error {
	if g.inflight != nil {
		g.inflight.Add(-int64(n))
	}
	if err == nil {
		// Empty exports (a flush with nothing queued) may not even reach
		// the collector, so they prove nothing about recovery.
		if n > 0 {
			g.log.success()
		}
		return nil
	}
	g.stats.failedItems.Add(int64(n))
	g.stats.failedExports.Add(1)
	g.stats.lastErr.Store(&err)
	g.log.failure(err, n)
	return nil
}

// spanExporter guards a span exporter.
type spanExporter struct {
	sdktrace.SpanExporter
	g *guard
}

func (e *spanExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	return e.g.done(len(spans), e.SpanExporter.ExportSpans(ctx, spans))
}

// gate bounds the items a batch processor holds, see the file comment.
type gate struct {
	limit    int64
	inflight *atomic.Int64
	stats    *signalStats
}

// admit takes a slot for one item, or counts it dropped when none is free.
func (g *gate) admit() bool {
	if g.inflight.Add(1) > g.limit {
		g.inflight.Add(-1)
		g.stats.droppedItems.Add(1)
		return false
	}
	return true
}

// spanGate bounds the spans held by a batch span processor.
type spanGate struct {
	sdktrace.SpanProcessor
	gate
}

func (g *spanGate) OnEnd(s sdktrace.ReadOnlySpan) {
	// The batch processor ignores unsampled spans; so must the count.
	if s.SpanContext().IsSampled() && g.admit() {
		g.SpanProcessor.OnEnd(s)
	}
}

// logExporter guards a log exporter.
type logExporter struct {
	sdklog.Exporter
	g *guard
}

func (e *logExporter) Export(ctx context.Context, records []sdklog.Record) error {
	return e.g.done(len(records), e.Exporter.Export(ctx, records))
}

// logGate bounds the records held by a batch log processor.
type logGate struct {
	sdklog.Processor
	gate
}

func (g *logGate) OnEmit(ctx context.Context, r *sdklog.Record) error {
	if !g.admit() {
		return nil
	}
	return g.Processor.OnEmit(ctx, r)
}

// metricExporter guards a metric exporter.
type metricExporter struct {
	sdkmetric.Exporter
	g *guard
}

// Export sends rm, one batch of at most maxExportPoints points from the
// periodic reader, and accounts for its points.
func (e *metricExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	return e.g.done(resourcePoints(rm), e.Exporter.Export(ctx, rm))
}
