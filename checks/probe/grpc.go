package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
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
	// first holds the first bytes the server sent on a cleartext
	// connection, to tell what it speaks when gRPC fails to read them.
	first []byte
}

// maxFirstBytes is how much of the server's first bytes is kept: an HTTP/2
// frame header, or "HTTP/1.1", fits.
const maxFirstBytes = 9

func (e *connEvents) noteRead(p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if n := maxFirstBytes - len(e.first); n > 0 {
		e.first = append(e.first, p[:min(n, len(p))]...)
	}
}

// firstBytes returns a copy of the server's first bytes.
func (e *connEvents) firstBytes() []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.first)
}

// peekConn notes the first bytes read in events.
type peekConn struct {
	net.Conn
	events *connEvents
}

func (c *peekConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.events.noteRead(p[:n])
	return n, err
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
		conn, err := dial(dctx, t, rec, "tcp", addr)
		if err != nil {
			events.setErr(err)
			return nil, err
		}
		if !c.UsesTLS() {
			rec.start(PhaseProcessing)
			return &peekConn{Conn: conn, events: events}, nil
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
		switch status.Code(err) {
		case codes.NotFound:
			return failf(ErrGRPCNotServing, "service %q unknown to the health server", c.GRPC.Service)
		case codes.Unimplemented:
			return failf(ErrGRPCUnimplemented, "the server has no grpc.health.v1.Health service (Unimplemented)")
		case codes.Unavailable:
			if !c.UsesTLS() {
				if msg := notCleartextGRPC(events.firstBytes(), err); msg != "" {
					return failf(ErrGRPCProtocol, "%s", msg)
				}
			}
		}
		return err
	}
	if resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		return failf(ErrGRPCNotServing, "health status %s", resp.GetStatus())
	}
	return certErr
}

// notCleartextGRPC says what a cleartext port that failed gRPC's
// connection setup speaks instead, judged by the first bytes the server
// sent; "" when they do not tell (or were an HTTP/2 frame).
func notCleartextGRPC(first []byte, err error) string {
	switch {
	case bytes.HasPrefix(first, []byte("HTTP/")):
		return "the port answered in HTTP/1.x, not gRPC over HTTP/2"
	case len(first) >= 2 && (first[0] == 0x15 || first[0] == 0x16) && first[1] == 0x03:
		return "the port answered in TLS: set grpc.tls: true"
	case len(first) == 0 && strings.Contains(err.Error(), "server preface"):
		// A TLS server closes on a cleartext HTTP/2 preface without a word.
		return "the server closed the connection without an HTTP/2 preface: not a cleartext gRPC port (a TLS port needs grpc.tls: true)"
	case len(first) >= 4 && first[3] != 0x04:
		// An HTTP/2 server's first frame is SETTINGS (type 4).
		return "the port answered, but not in HTTP/2"
	}
	return ""
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
