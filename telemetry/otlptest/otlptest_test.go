package otlptest_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

func traces(name string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName(name)
	return td
}

func metrics(name string, v int64) pmetric.Metrics {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName(name)
	m.SetEmptySum().DataPoints().AppendEmpty().SetIntValue(v)
	return md
}

func logs(body string) plog.Logs {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(body)
	return ld
}

func dial(t *testing.T, r *otlptest.Receiver) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(r.Endpoint(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func TestReceiverGRPC(t *testing.T) {
	r := otlptest.Start(t)
	cc := dial(t, r)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-token", "secret")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	if _, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(traces("span-1"))); err != nil {
		t.Fatal(err)
	}
	if _, err := pmetricotlp.NewGRPCClient(cc).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(metrics("m", 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := pmetricotlp.NewGRPCClient(cc).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(metrics("m", 7))); err != nil {
		t.Fatal(err)
	}
	if _, err := plogotlp.NewGRPCClient(cc).Export(ctx, plogotlp.NewExportRequestFromLogs(logs("hello"))); err != nil {
		t.Fatal(err)
	}

	spans := r.WaitForSpans(t, 1, time.Second)
	if got := spans[0].Name(); got != "span-1" {
		t.Errorf("span name = %q, want span-1", got)
	}
	if v, _ := spans[0].Resource.Attributes().Get("service.name"); v.Str() != "svc" {
		t.Errorf("resource service.name = %q, want svc", v.Str())
	}
	if got := r.WaitForMetric(t, "m", time.Second).Sum().DataPoints().At(0).IntValue(); got != 7 {
		t.Errorf("latest metric value = %d, want 7", got)
	}
	if got := r.WaitForLogs(t, 1, time.Second)[0].Body().Str(); got != "hello" {
		t.Errorf("log body = %q, want hello", got)
	}
	if got := r.Metadata().Get("x-token"); len(got) != 1 || got[0] != "secret" {
		t.Errorf("metadata x-token = %q, want [secret]", got)
	}
	if got := r.Requests(); got != 4 {
		t.Errorf("Requests() = %d, want 4", got)
	}
	r.Reset()
	if n := len(r.Spans()) + len(r.Metrics()) + len(r.Logs()); n != 0 {
		t.Errorf("after Reset: %d items, want 0", n)
	}
}

func TestReceiverHTTP(t *testing.T) {
	r := otlptest.Start(t)
	tests := []struct {
		path string
		body func() ([]byte, error)
	}{
		{"/v1/traces", ptraceotlp.NewExportRequestFromTraces(traces("http-span")).MarshalProto},
		{"/v1/metrics", pmetricotlp.NewExportRequestFromMetrics(metrics("http-metric", 3)).MarshalProto},
		{"/v1/logs", plogotlp.NewExportRequestFromLogs(logs("http-log")).MarshalProto},
	}
	for _, tt := range tests {
		body, err := tt.body()
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, r.HTTPURL()+tt.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("X-Token", "t1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: status %d", tt.path, resp.StatusCode)
		}
	}
	if got := r.WaitForSpans(t, 1, time.Second)[0].Name(); got != "http-span" {
		t.Errorf("span = %q", got)
	}
	r.WaitForMetric(t, "http-metric", time.Second)
	r.WaitForLogs(t, 1, time.Second)
	if got := r.Metadata().Get("x-token"); len(got) != 1 || got[0] != "t1" {
		t.Errorf("header x-token = %q, want [t1]", got)
	}
}

func TestReceiverStopRestartAndSetError(t *testing.T) {
	r := otlptest.Start(t)
	addr := r.Endpoint()
	cc := dial(t, r)
	client := ptraceotlp.NewGRPCClient(cc)
	export := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(traces("s")))
		return err
	}

	r.SetError(status.Error(codes.InvalidArgument, "injected"))
	if err := export(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("with SetError: err = %v, want InvalidArgument", err)
	}
	r.SetError(nil)

	r.Stop()
	if err := export(); status.Code(err) != codes.Unavailable {
		t.Fatalf("after Stop: err = %v, want Unavailable", err)
	}
	r.Restart(t)
	if r.Endpoint() != addr {
		t.Fatalf("Restart moved from %s to %s", addr, r.Endpoint())
	}
	// The client reconnects with backoff; grpc.WaitForReady rides that out.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(traces("s")), grpc.WaitForReady(true)); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
	if n := len(r.WaitForSpans(t, 1, time.Second)); n != 1 {
		t.Fatalf("got %d spans, want 1 (the failed exports must not be stored)", n)
	}
}
