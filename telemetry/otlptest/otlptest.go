// Package otlptest is an in-process OTLP receiver for tests, so that tests
// assert what actually crosses the wire. It is built on the OpenTelemetry
// Collector's pdata packages and accepts traces, metrics and logs over
// OTLP/gRPC and OTLP/HTTP (protobuf, optionally gzip-compressed), each on a
// free port on 127.0.0.1.
//
// Typical use with the telemetry package:
//
//	r := otlptest.Start(t)
//	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.URL())
//	p, err := telemetry.Setup(ctx, telemetry.Options{})
//	... record ...
//	p.ForceFlush(ctx) // or wait for the batch/metric interval
//	m := r.WaitForMetric(t, "http.server.request.duration", 5*time.Second)
//
// For a child process (e2e), pass r.Env() in its environment.
//
// The Wait methods do not poll: they wake when data arrives, and fail the
// test with t.Fatalf when the timeout passes first.
package otlptest

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Span is a received span with the resource and scope it was sent under.
type Span struct {
	Resource pcommon.Resource
	Scope    pcommon.InstrumentationScope
	ptrace.Span
}

// Metric is a received metric with the resource and scope it was sent under.
type Metric struct {
	Resource pcommon.Resource
	Scope    pcommon.InstrumentationScope
	pmetric.Metric
}

// LogRecord is a received log record with its resource and scope.
type LogRecord struct {
	Resource pcommon.Resource
	Scope    pcommon.InstrumentationScope
	plog.LogRecord
}

// Receiver is a running OTLP receiver. Its methods are safe for concurrent use.
type Receiver struct {
	grpcAddr string
	httpAddr string

	mu       sync.Mutex
	spans    []Span
	metrics  []Metric
	logs     []LogRecord
	md       metadata.MD
	requests int
	failWith error
	changed  chan struct{} // closed and replaced whenever data arrives
	grpcSrv  *grpc.Server
	httpSrv  *http.Server
	lis      []net.Listener
}

// Start starts a receiver on free ports of 127.0.0.1 that stops when the test ends.
func Start(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{changed: make(chan struct{})}
	if err := r.listen("127.0.0.1:0", "127.0.0.1:0"); err != nil {
		t.Fatalf("otlptest: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Endpoint is the OTLP/gRPC address, host:port.
func (r *Receiver) Endpoint() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.grpcAddr
}

// URL is the OTLP/gRPC endpoint for OTEL_EXPORTER_OTLP_ENDPOINT.
func (r *Receiver) URL() string {
	// The http scheme makes the exporters use plaintext.
	return "http://" + r.Endpoint()
}

// HTTPURL is the OTLP/HTTP base URL (/v1/traces etc. below it), for OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.
func (r *Receiver) HTTPURL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "http://" + r.httpAddr
}

// Env is the KEY=value environment a child process needs to export all three signals to r over gRPC.
func (r *Receiver) Env() []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.URL(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
	}
}

// Spans returns all spans received so far, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Metrics returns all metrics received so far, once per export, in arrival order.
func (r *Receiver) Metrics() []Metric {
	// With cumulative temporality the last of a name holds the totals.
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Metric(nil), r.metrics...)
}

// Logs returns all log records received so far, in arrival order.
func (r *Receiver) Logs() []LogRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]LogRecord(nil), r.logs...)
}

// Requests returns the number of export requests accepted so far.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// Metadata returns the gRPC metadata (OTLP/HTTP: lower-cased headers) of the last accepted export.
func (r *Receiver) Metadata() metadata.MD {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.md.Copy()
}

// Reset forgets everything received so far.
func (r *Receiver) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans, r.metrics, r.logs, r.md, r.requests = nil, nil, nil, nil, 0
}

// SetError makes every following export fail with err, a gRPC status error, storing nothing; nil undoes it.
func (r *Receiver) SetError(err error) {
	// Errors without a status become codes.Internal. Over OTLP/HTTP,
	// Unavailable maps to 503, ResourceExhausted to 429 and anything else to
	// 400. The exporters retry Unavailable and ResourceExhausted until their
	// timeout, but not InvalidArgument.
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failWith = err
}

// WaitFor re-evaluates cond (what names it) whenever data arrives, failing the test after timeout.
func (r *Receiver) WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		// ch was taken before cond runs, so data arriving in between wakes us.
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("otlptest: timed out after %v waiting for %s (received %d spans, %d metrics, %d log records)",
				timeout, what, len(r.Spans()), len(r.Metrics()), len(r.Logs()))
		}
	}
}

// WaitForSpans waits until at least n spans have arrived and returns all spans.
func (r *Receiver) WaitForSpans(t testing.TB, n int, timeout time.Duration) []Span {
	t.Helper()
	return waitForN(t, r, n, timeout, "spans", r.Spans)
}

// WaitForLogs waits until at least n log records have arrived and returns all records.
func (r *Receiver) WaitForLogs(t testing.TB, n int, timeout time.Duration) []LogRecord {
	t.Helper()
	return waitForN(t, r, n, timeout, "log records", r.Logs)
}

// waitForN waits until all returns at least n items, and returns them.
func waitForN[T any](t testing.TB, r *Receiver, n int, timeout time.Duration, what string, all func() []T) []T {
	t.Helper()
	var got []T
	r.WaitFor(t, timeout, fmt.Sprintf("%d %s", n, what), func() bool {
		got = all()
		return len(got) >= n
	})
	return got
}

// WaitForMetric waits for a metric named name to arrive and returns the most recent one.
func (r *Receiver) WaitForMetric(t testing.TB, name string, timeout time.Duration) Metric {
	t.Helper()
	return r.WaitForMetricFunc(t, name, timeout, func(Metric) bool { return true })
}

// WaitForMetricFunc waits until the most recent metric named name satisfies ok, and returns it.
func (r *Receiver) WaitForMetricFunc(t testing.TB, name string, timeout time.Duration, ok func(Metric) bool) Metric {
	t.Helper()
	var found Metric
	r.WaitFor(t, timeout, "metric "+name, func() bool {
		ms := r.Metrics()
		for i := len(ms) - 1; i >= 0; i-- {
			if ms[i].Name() == name {
				found = ms[i]
				return ok(found)
			}
		}
		return false
	})
	return found
}

// Stop closes the receiver and its connections, like a collector going down, until Restart.
func (r *Receiver) Stop() {
	r.mu.Lock()
	g, h, lis := r.grpcSrv, r.httpSrv, r.lis
	r.grpcSrv, r.httpSrv, r.lis = nil, nil, nil
	r.mu.Unlock()
	// Close the listeners here too: a Serve goroutine that has not started
	// yet would close its listener only later, racing with Restart's bind.
	for _, l := range lis {
		_ = l.Close()
	}
	if g != nil {
		g.Stop()
	}
	if h != nil {
		_ = h.Close()
	}
}

// Restart starts a stopped receiver again on the same ports, keeping what it has received.
func (r *Receiver) Restart(t testing.TB) {
	t.Helper()
	r.Stop()
	r.mu.Lock()
	g, h := r.grpcAddr, r.httpAddr
	r.mu.Unlock()
	if err := r.listen(g, h); err != nil {
		t.Fatalf("otlptest: restart: %v", err)
	}
}

// listen starts both servers on the given addresses.
func (r *Receiver) listen(grpcAddr, httpAddr string) error {
	gl, err := net.Listen("tcp", grpcAddr)
	if err != nil {
		return fmt.Errorf("listen gRPC on %s: %w", grpcAddr, err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		_ = gl.Close()
		return fmt.Errorf("listen HTTP on %s: %w", httpAddr, err)
	}
	g := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(g, &traceServer{r: r})
	pmetricotlp.RegisterGRPCServer(g, &metricServer{r: r})
	plogotlp.RegisterGRPCServer(g, &logServer{r: r})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", r.serveHTTP(httpExport(ptraceotlp.NewExportRequest,
		func(md metadata.MD, req ptraceotlp.ExportRequest) error { return r.acceptTraces(md, req.Traces()) },
		ptraceotlp.NewExportResponse)))
	mux.HandleFunc("POST /v1/metrics", r.serveHTTP(httpExport(pmetricotlp.NewExportRequest,
		func(md metadata.MD, req pmetricotlp.ExportRequest) error { return r.acceptMetrics(md, req.Metrics()) },
		pmetricotlp.NewExportResponse)))
	mux.HandleFunc("POST /v1/logs", r.serveHTTP(httpExport(plogotlp.NewExportRequest,
		func(md metadata.MD, req plogotlp.ExportRequest) error { return r.acceptLogs(md, req.Logs()) },
		plogotlp.NewExportResponse)))
	h := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	r.mu.Lock()
	r.grpcAddr, r.httpAddr = gl.Addr().String(), hl.Addr().String()
	r.grpcSrv, r.httpSrv, r.lis = g, h, []net.Listener{gl, hl}
	r.mu.Unlock()
	go func() { _ = g.Serve(gl) }()
	go func() { _ = h.Serve(hl) }()
	return nil
}

// accept stores one request's data unless an error is injected.
func (r *Receiver) accept(md metadata.MD, store func()) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failWith != nil {
		return r.failWith
	}
	store()
	r.md = md
	r.requests++
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// storeTraces, storeMetrics and storeLogs flatten a request; the caller holds r.mu.
func (r *Receiver) storeTraces(td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, s := range ss.Spans().All() {
				r.spans = append(r.spans, Span{rs.Resource(), ss.Scope(), s})
			}
		}
	}
}

func (r *Receiver) storeMetrics(md pmetric.Metrics) {
	for _, rm := range md.ResourceMetrics().All() {
		for _, sm := range rm.ScopeMetrics().All() {
			for _, m := range sm.Metrics().All() {
				r.metrics = append(r.metrics, Metric{rm.Resource(), sm.Scope(), m})
			}
		}
	}
}

func (r *Receiver) storeLogs(ld plog.Logs) {
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, l := range sl.LogRecords().All() {
				r.logs = append(r.logs, LogRecord{rl.Resource(), sl.Scope(), l})
			}
		}
	}
}

// acceptTraces, acceptMetrics and acceptLogs copy a request's data before
// keeping it: pdata may reuse the request's memory once the handler returns.

func (r *Receiver) acceptTraces(md metadata.MD, in ptrace.Traces) error {
	td := ptrace.NewTraces()
	in.CopyTo(td)
	return r.accept(md, func() { r.storeTraces(td) })
}

func (r *Receiver) acceptMetrics(md metadata.MD, in pmetric.Metrics) error {
	m := pmetric.NewMetrics()
	in.CopyTo(m)
	return r.accept(md, func() { r.storeMetrics(m) })
}

func (r *Receiver) acceptLogs(md metadata.MD, in plog.Logs) error {
	ld := plog.NewLogs()
	in.CopyTo(ld)
	return r.accept(md, func() { r.storeLogs(ld) })
}

// httpExport decodes an OTLP/HTTP protobuf request, hands it to accept and
// encodes the response: the same for all three signals.
func httpExport[Req interface{ UnmarshalProto([]byte) error }, Resp interface{ MarshalProto() ([]byte, error) }](
	newReq func() Req, accept func(metadata.MD, Req) error, newResp func() Resp,
) func(metadata.MD, []byte) ([]byte, error) {
	return func(md metadata.MD, body []byte) ([]byte, error) {
		req := newReq()
		if err := req.UnmarshalProto(body); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		if err := accept(md, req); err != nil {
			return nil, err
		}
		return newResp().MarshalProto()
	}
}

// serveHTTP adapts a request handler to OTLP/HTTP with protobuf bodies.
func (r *Receiver) serveHTTP(handle func(metadata.MD, []byte) ([]byte, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
			zr, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			defer zr.Close()
			body = zr
		}
		if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
			http.Error(w, "unsupported Content-Type "+ct, http.StatusUnsupportedMediaType)
			return
		}
		data, err := io.ReadAll(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		md := metadata.MD{}
		for k, v := range req.Header {
			md.Append(strings.ToLower(k), v...)
		}
		resp, err := handle(md, data)
		if err != nil {
			code := http.StatusBadRequest
			switch status.Code(err) {
			case codes.Unavailable:
				code = http.StatusServiceUnavailable
			case codes.ResourceExhausted:
				code = http.StatusTooManyRequests
			}
			http.Error(w, err.Error(), code)
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}
}

// incoming returns a gRPC request's metadata.
func incoming(ctx context.Context) metadata.MD {
	md, _ := metadata.FromIncomingContext(ctx)
	return md.Copy()
}

// grpcError turns an injected error into a gRPC status error.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Internal, err.Error())
}

type traceServer struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *traceServer) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	return ptraceotlp.NewExportResponse(), grpcError(s.r.acceptTraces(incoming(ctx), req.Traces()))
}

type metricServer struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *metricServer) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	return pmetricotlp.NewExportResponse(), grpcError(s.r.acceptMetrics(incoming(ctx), req.Metrics()))
}

type logServer struct {
	plogotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *logServer) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	return plogotlp.NewExportResponse(), grpcError(s.r.acceptLogs(incoming(ctx), req.Logs()))
}
