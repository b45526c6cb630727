package probe

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// requireTraceparent rejects health checks of "svc.trace" that do not carry
// the test's traceparent.
func requireTraceparent(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if hr, ok := req.(*grpc_health_v1.HealthCheckRequest); ok && hr.GetService() == "svc.trace" {
		md, _ := metadata.FromIncomingContext(ctx)
		if got := md.Get("traceparent"); len(got) != 1 || got[0] != testTraceparent {
			return nil, status.Errorf(codes.PermissionDenied, "traceparent %v", got)
		}
	}
	return handler(ctx, req)
}

// grpcHealthServer serves grpc.health.v1 (unless withHealth is false) with
// "svc.up" and "svc.trace" SERVING and "svc.down" NOT_SERVING.
func grpcHealthServer(t *testing.T, cert *tls.Certificate, withHealth bool) string {
	t.Helper()
	opts := []grpc.ServerOption{grpc.UnaryInterceptor(requireTraceparent)}
	if cert != nil {
		opts = append(opts, grpc.Creds(credentials.NewServerTLSFromCert(cert)))
	}
	srv := grpc.NewServer(opts...)
	if withHealth {
		hs := health.NewServer()
		hs.SetServingStatus("svc.up", grpc_health_v1.HealthCheckResponse_SERVING)
		hs.SetServingStatus("svc.trace", grpc_health_v1.HealthCheckResponse_SERVING)
		hs.SetServingStatus("svc.down", grpc_health_v1.HealthCheckResponse_NOT_SERVING)
		grpc_health_v1.RegisterHealthServer(srv, hs)
	}
	return testkit.ServeGRPC(t, srv)
}

func TestGRPCProbe(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	plain := grpcHealthServer(t, nil, true)
	secure := grpcHealthServer(t, &pki.valid, true)
	selfSigned := grpcHealthServer(t, &pki.selfSigned, true)
	noHealth := grpcHealthServer(t, nil, false)
	h1 := httptest.NewServer(http.NotFoundHandler()) // HTTP/1.1 only, as net/http serves cleartext
	t.Cleanup(h1.Close)
	http1 := strings.TrimPrefix(h1.URL, "http://")
	// A TLS terminator's answer to a cleartext hello: a fatal alert record.
	tlsAlert := tcpServer(t, nil, func(c net.Conn) {
		c.Read(make([]byte, 64))
		c.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46})
	})
	hanging, _ := testkit.BlackHole(t)
	closed := testkit.ClosedAddr(t)
	_, securePort, _ := net.SplitHostPort(secure)
	ca := config.TLSOptions{CAFile: pki.caFile}
	traced := trace.ContextWithSpanContext(context.Background(), testSpanContext())

	type row = struct {
		name     string
		target   string
		address  string
		grpc     config.GRPCOptions
		tls      config.TLSOptions
		ctx      context.Context
		timeout  time.Duration
		wantType string
		wantMsg  string
	}
	tests := []row{
		{name: "server health", target: plain, wantMsg: "gRPC health of (server) at " + plain + ": SERVING"},
		{name: "service serving", target: plain, grpc: config.GRPCOptions{Service: "svc.up"}},
		{name: "service not serving", target: plain, grpc: config.GRPCOptions{Service: "svc.down"}, wantType: ErrGRPCNotServing},
		{name: "service unknown", target: plain, grpc: config.GRPCOptions{Service: "svc.nope"}, wantType: ErrGRPCNotServing},
		{name: "traceparent sent", target: plain, grpc: config.GRPCOptions{Service: "svc.trace"}, ctx: traced},
		{name: "no traceparent without span", target: plain, grpc: config.GRPCOptions{Service: "svc.trace"}, wantType: ErrOther},
		// The wire values are spelled out: they are part of the fixed error.type set.
		{name: "health not implemented", target: noHealth, wantType: "grpc_unimplemented"},
		{name: "HTTP/1.1 port", target: http1, wantType: "grpc_protocol_mismatch", wantMsg: "HTTP/1"},
		{name: "plaintext to a TLS port", target: secure, wantType: "grpc_protocol_mismatch", wantMsg: "TLS"},
		{name: "plaintext to a TLS port that alerts", target: tlsAlert, wantType: "grpc_protocol_mismatch", wantMsg: "answered in TLS"},
		{name: "TLS to a plaintext port", target: plain, grpc: config.GRPCOptions{UseTLS: true}, tls: ca, wantType: ErrTLS},
		{name: "closed port", target: closed, wantType: ErrConnectionRefused},
		{name: "hanging server", target: hanging, timeout: 200 * time.Millisecond, wantType: ErrTimeout},
		{name: "empty target", target: "", wantType: ErrOther},
		{name: "TLS serving", target: secure, grpc: config.GRPCOptions{Service: "svc.up", UseTLS: true}, tls: ca},
		{name: "TLS not serving", target: secure, grpc: config.GRPCOptions{Service: "svc.down", UseTLS: true}, tls: ca, wantType: ErrGRPCNotServing},
		{name: "TLS unknown authority", target: secure, grpc: config.GRPCOptions{UseTLS: true}, wantType: ErrTLS},
		{name: "TLS self-signed", target: selfSigned, grpc: config.GRPCOptions{UseTLS: true}, tls: ca, wantType: ErrTLS},
		{name: "TLS self-signed, verify off", target: selfSigned, grpc: config.GRPCOptions{UseTLS: true}, tls: config.TLSOptions{InsecureSkipVerify: true}},
		{name: "TLS min days", target: secure, grpc: config.GRPCOptions{UseTLS: true}, tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 365}, wantType: ErrCertExpiring},
		{name: "TLS address override keeps SNI", target: "heartbeat.test:" + securePort, address: secure,
			grpc: config.GRPCOptions{UseTLS: true}, tls: ca, wantMsg: "gRPC health of (server) at " + secure + ": SERVING"},
		{name: "address override closed", target: plain, address: closed, wantType: ErrConnectionRefused},
	}
	runTable(t, tests, func(tc row) tableCase {
		return tableCase{name: tc.name, address: tc.address, ctx: tc.ctx, wantType: tc.wantType,
			check: config.Check{Type: config.TypeGRPC, Target: tc.target, Timeout: tc.timeout, GRPC: tc.grpc, TLS: tc.tls}}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		if tc.wantMsg != "" && res.Message != tc.wantMsg && (tc.wantType == "" || !strings.Contains(res.Message, tc.wantMsg)) {
			t.Errorf("message %q, want %q", res.Message, tc.wantMsg)
		}
		if !strings.HasPrefix(res.Message, "gRPC health of ") {
			t.Errorf("message %q", res.Message)
		}
		if res.Success && tc.grpc.UseTLS && res.CertExpiry.IsZero() {
			t.Error("TLS run recorded no certificate expiry")
		}
		if res.Success && !peerIs(res, "") {
			t.Errorf("server address %s", res.Peer)
		}
	})
}
