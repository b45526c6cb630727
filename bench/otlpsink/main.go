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

// sink counts the export requests of one signal and the items in them.
type sink[Req, Resp any] struct {
	c     *counts
	items *atomic.Int64
	count func(Req) int
	resp  func() Resp
}

// Export counts req and accepts it.
func (s *sink[Req, Resp]) Export(_ context.Context, req Req) (Resp, error) {
	s.c.requests.Add(1)
	s.items.Add(int64(s.count(req)))
	return s.resp(), nil
}

// The generated servers must embed their Unimplemented type; one level down,
// its Export gives way to the sink's.
type (
	traceServer struct {
		ptraceotlp.UnimplementedGRPCServer
	}
	metricServer struct {
		pmetricotlp.UnimplementedGRPCServer
	}
	logServer struct {
		plogotlp.UnimplementedGRPCServer
	}
)

// newSink counts into items the requests' items as count finds them.
func newSink[Req, Resp any](c *counts, items *atomic.Int64, count func(Req) int, resp func() Resp) *sink[Req, Resp] {
	return &sink[Req, Resp]{c: c, items: items, count: count, resp: resp}
}

// register serves all three signals into c.
func register(srv *grpc.Server, c *counts) {
	ptraceotlp.RegisterGRPCServer(srv, &struct {
		traceServer
		*sink[ptraceotlp.ExportRequest, ptraceotlp.ExportResponse]
	}{sink: newSink(c, &c.spans, func(r ptraceotlp.ExportRequest) int { return r.Traces().SpanCount() }, ptraceotlp.NewExportResponse)})
	pmetricotlp.RegisterGRPCServer(srv, &struct {
		metricServer
		*sink[pmetricotlp.ExportRequest, pmetricotlp.ExportResponse]
	}{sink: newSink(c, &c.metricPoints, func(r pmetricotlp.ExportRequest) int { return r.Metrics().DataPointCount() }, pmetricotlp.NewExportResponse)})
	plogotlp.RegisterGRPCServer(srv, &struct {
		logServer
		*sink[plogotlp.ExportRequest, plogotlp.ExportResponse]
	}{sink: newSink(c, &c.logRecords, func(r plogotlp.ExportRequest) int { return r.Logs().LogRecordCount() }, plogotlp.NewExportResponse)})
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
	register(srv, c)

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
