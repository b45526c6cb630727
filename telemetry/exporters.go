package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploggrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutlog"
	"go.opentelemetry.io/otel/exporters/stdout/stdoutmetric"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// The exporters are chosen by hand rather than through
// go.opentelemetry.io/contrib/exporters/autoexport: autoexport links the
// Prometheus client (+1.1 MiB stripped) and defaults to OTLP when nothing is
// configured, while we want "off unless configured". The OTLP exporters
// read endpoint, headers, timeout, compression, TLS and temporality from the
// OTEL_EXPORTER_OTLP_* variables themselves, so no options are passed here
// except the gRPC reconnect backoff.

// defaultReconnectMaxDelay caps gRPC's reconnect backoff (default cap 120 s)
// so that export resumes within seconds of the collector coming back.
// Reconnect attempts to a down collector are a refused TCP connect: cheap.
const defaultReconnectMaxDelay = 5 * time.Second

// grpcDialOption is the reconnect policy of the OTLP/gRPC exporters.
func (b *builder) grpcDialOption() grpc.DialOption {
	return grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{
			BaseDelay:  min(time.Second, b.opts.reconnectMaxDelay),
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   b.opts.reconnectMaxDelay,
		},
		MinConnectTimeout: 20 * time.Second,
	})
}

func (b *builder) spanExporter(ctx context.Context, kind string) (sdktrace.SpanExporter, error) {
	switch {
	case kind == exporterConsole:
		return stdouttrace.New(stdouttrace.WithWriter(b.opts.console))
	case b.cfg.traces.protocol == protocolHTTPProtobuf:
		return otlptracehttp.New(ctx)
	default:
		return otlptracegrpc.New(ctx, otlptracegrpc.WithDialOption(b.grpcDialOption()))
	}
}

func (b *builder) metricExporter(ctx context.Context, kind string) (sdkmetric.Exporter, error) {
	switch {
	case kind == exporterConsole:
		return stdoutmetric.New(stdoutmetric.WithWriter(b.opts.console))
	case b.cfg.metrics.protocol == protocolHTTPProtobuf:
		return otlpmetrichttp.New(ctx)
	default:
		return otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithDialOption(b.grpcDialOption()))
	}
}

func (b *builder) logExporter(ctx context.Context, kind string) (sdklog.Exporter, error) {
	switch {
	case kind == exporterConsole:
		return stdoutlog.New(stdoutlog.WithWriter(b.opts.console))
	case b.cfg.logs.protocol == protocolHTTPProtobuf:
		return otlploghttp.New(ctx)
	default:
		return otlploggrpc.New(ctx, otlploggrpc.WithDialOption(b.grpcDialOption()))
	}
}
