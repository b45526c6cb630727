package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// probeGRPC calls grpc.health.v1.Health/Check for the check's service over a
// fresh connection; anything but SERVING fails the run.
func probeGRPC(ctx context.Context, t Target) Result {
	svc := t.Check.GRPC.Service
	if svc == "" {
		svc = "(server)"
	}
	prefix := fmt.Sprintf("gRPC health of %s at %s: ", svc, dialAddress(t))
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		return prefix + "SERVING", doGRPC(ctx, t, res, rec)
	}, func(reason string) string { return prefix + reason })
}

// connEvents collects what happens on grpc's goroutines while it connects:
// gRPC reports a failed dial or handshake only as an Unavailable status
// whose text has lost the error chain, so the original error is kept here.
type connEvents struct {
	mu    sync.Mutex
	err   error
	state *tls.ConnectionState
}

func (e *connEvents) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.err = err
}

func (e *connEvents) get() (*tls.ConnectionState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state, e.err
}

func doGRPC(ctx context.Context, t Target, res *Result, rec *recorder) error {
	c := t.Check
	addr := dialAddress(t)
	if c.Server.Host == "" {
		return failf(ErrOther, "empty address")
	}
	events := &connEvents{}
	var creds credentials.TransportCredentials = insecure.NewCredentials()
	if c.UsesTLS() {
		// ServerName "" lets grpc use the target's host (the authority),
		// never the override address.
		cfg, err := tlsConfig(c.TLS, "")
		if err != nil {
			return err
		}
		creds = &recordingCreds{TransportCredentials: credentials.NewTLS(cfg), rec: rec, events: events}
	}
	dialer := func(dctx context.Context, _ string) (net.Conn, error) {
		conn, err := dial(dctx, rec, "tcp", addr)
		if err != nil {
			events.setErr(err)
			return nil, err
		}
		if !c.UsesTLS() {
			rec.start(PhaseProcessing)
		}
		return conn, nil
	}
	// passthrough: the target is dialled as given, by our dialer, once.
	cc, err := grpc.NewClient("passthrough:///"+c.Server.String(),
		grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(dialer),
		grpc.WithUserAgent(userAgent),
		grpc.WithNoProxy(),
		grpc.WithDisableRetry(),
	)
	if err != nil {
		return failf(ErrOther, "grpc client: %v", err)
	}
	defer cc.Close()

	callCtx := ctx
	if t.Propagator != nil {
		md := metadata.MD{}
		t.Propagator.Inject(ctx, mdCarrier(md))
		callCtx = metadata.NewOutgoingContext(ctx, md)
	}
	resp, err := grpc_health_v1.NewHealthClient(cc).Check(callCtx, &grpc_health_v1.HealthCheckRequest{Service: c.GRPC.Service})
	if err == nil {
		rec.end(PhaseProcessing) // on failure finish closes it and names it in a timeout's reason
	}
	state, connErr := events.get()
	certErr := checkCert(res, state, c.TLS.MinDaysLeft)
	if err != nil {
		if connErr != nil && status.Code(err) == codes.Unavailable {
			return fmt.Errorf("connecting: %w", connErr)
		}
		if status.Code(err) == codes.NotFound {
			return failf(ErrGRPCNotServing, "service %q unknown to the health server", c.GRPC.Service)
		}
		return err
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return failf(ErrGRPCNotServing, "health status %s", resp.GetStatus())
	}
	return certErr
}

// recordingCreds times the TLS handshake and keeps its error and state.
type recordingCreds struct {
	credentials.TransportCredentials
	rec    *recorder
	events *connEvents
}

func (c *recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c.rec.start(PhaseTLS)
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if err != nil {
		c.events.setErr(err)
		return conn, info, err
	}
	c.rec.end(PhaseTLS)
	if ti, ok := info.(credentials.TLSInfo); ok {
		c.events.mu.Lock()
		c.events.state = &ti.State
		c.events.mu.Unlock()
	}
	c.rec.start(PhaseProcessing)
	return conn, info, nil
}

// Clone keeps the recording wrapper on copies grpc makes.
func (c *recordingCreds) Clone() credentials.TransportCredentials {
	return &recordingCreds{TransportCredentials: c.TransportCredentials.Clone(), rec: c.rec, events: c.events}
}

// mdCarrier lets a propagator write into gRPC metadata, whose keys are
// lower case.
type mdCarrier metadata.MD

var _ propagation.TextMapCarrier = mdCarrier{}

func (m mdCarrier) Get(key string) string {
	if v := metadata.MD(m).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (m mdCarrier) Set(key, value string) { metadata.MD(m).Set(strings.ToLower(key), value) }

func (m mdCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
