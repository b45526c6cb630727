// Command otlpsink is the live OTLP/gRPC receiver used by `make bench`: it
// accepts traces, metrics and logs, counts them and throws them away, so the
// telemetry overhead is measured against a real export path without the cost
// of a full collector on the benchmark's cores.
//
// It prints "listening on ADDR" once it accepts connections and, when it stops
// (SIGINT, SIGTERM or -timeout), one line of counts:
//
//	otlpsink: export_requests=N spans=N metric_points=N log_records=N
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	// Registered so that exporters configured with gzip compression work too.
	_ "google.golang.org/grpc/encoding/gzip"
)

// counts holds what the sink has received since it started.
type counts struct {
	requests     atomic.Int64
	spans        atomic.Int64
	metricPoints atomic.Int64
	logRecords   atomic.Int64
}

func (c *counts) String() string {
	return fmt.Sprintf("otlpsink: export_requests=%d spans=%d metric_points=%d log_records=%d",
		c.requests.Load(), c.spans.Load(), c.metricPoints.Load(), c.logRecords.Load())
}

type traceSink struct {
	ptraceotlp.UnimplementedGRPCServer
	c *counts
}

func (s *traceSink) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	s.c.requests.Add(1)
	s.c.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

type metricSink struct {
	pmetricotlp.UnimplementedGRPCServer
	c *counts
}

func (s *metricSink) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	s.c.requests.Add(1)
	s.c.metricPoints.Add(int64(req.Metrics().DataPointCount()))
	return pmetricotlp.NewExportResponse(), nil
}

type logSink struct {
	plogotlp.UnimplementedGRPCServer
	c *counts
}

func (s *logSink) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	s.c.requests.Add(1)
	s.c.logRecords.Add(int64(req.Logs().LogRecordCount()))
	return plogotlp.NewExportResponse(), nil
}

func main() {
	if err := run(); err != nil {
		slog.Error("otlpsink failed", "err", err)
		os.Exit(1)
	}
}

func run() error {
	listen := flag.String("listen", "127.0.0.1:0", "address to accept OTLP/gRPC on")
	timeout := flag.Duration("timeout", 30*time.Minute, "stop by itself after this long, so a crashed benchmark leaves nothing running")
	flag.Parse()

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	c := &counts{}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, &traceSink{c: c})
	pmetricotlp.RegisterGRPCServer(srv, &metricSink{c: c})
	plogotlp.RegisterGRPCServer(srv, &logSink{c: c})

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Printf("listening on %s\n", ln.Addr())

	select {
	case err = <-served:
	case <-ctx.Done():
		// Exporters flushing at the same moment must not hold the sink open.
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(2 * time.Second):
			srv.Stop()
		}
		err = <-served
	}
	fmt.Println(c)
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
