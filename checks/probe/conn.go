package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptrace"
	"os"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// dialAddress is the host:port a tcp, tls or grpc run dials: the override
// address of an each_address run, else the check's server.
func dialAddress(t Target) string {
	if t.Address.IsValid() {
		return t.Address.String()
	}
	return t.Check.Server.String()
}

// dial connects to addr within ctx, recording dns and connect phases.
func dial(ctx context.Context, rec *recorder, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(httptrace.WithClientTrace(ctx, rec.dialTrace()), network, addr)
}

// connect dials addr and, when the check uses TLS, completes a handshake
// verified against the check's TLS options and the target's host name
// (never the override address's). The returned state is nil without TLS.
func connect(ctx context.Context, t Target, addr string, rec *recorder) (net.Conn, *tls.ConnectionState, error) {
	if t.Check.Server.Host == "" {
		return nil, nil, failf(ErrOther, "empty address")
	}
	useTLS := t.Check.UsesTLS()
	var cfg *tls.Config
	if useTLS {
		var err error
		if cfg, err = tlsConfig(t.Check.TLS, t.Check.Server.Host); err != nil {
			return nil, nil, err
		}
	}
	conn, err := dial(ctx, rec, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	if !useTLS {
		return conn, nil, nil
	}
	tc, err := handshake(ctx, rec, conn, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	state := tc.ConnectionState()
	return tc, &state, nil
}

// handshake runs a TLS client handshake over conn, recording the tls phase.
func handshake(ctx context.Context, rec *recorder, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	rec.start(PhaseTLS)
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	rec.end(PhaseTLS)
	return tc, nil
}

// tlsConfig builds the client TLS configuration of a check. serverName is
// used when the options name none; "" lets net/http take it from the URL.
func tlsConfig(opts config.TLSOptions, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName: serverName,
		// InsecureSkipVerify is an explicit per-check opt-in (self-signed
		// targets); expiry is still checked against min_days_left.
		InsecureSkipVerify: opts.InsecureSkipVerify, //nolint:gosec // user's choice per check
	}
	if opts.ServerName != "" {
		cfg.ServerName = opts.ServerName
	}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, failf(ErrOther, "reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, failf(ErrOther, "CA file %s holds no PEM certificate", opts.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// checkCert records the leaf certificate's expiry and enforces min_days_left.
func checkCert(res *Result, state *tls.ConnectionState, minDaysLeft int) error {
	if state == nil || len(state.PeerCertificates) == 0 {
		return nil
	}
	leaf := state.PeerCertificates[0]
	res.CertExpiry = leaf.NotAfter
	if minDaysLeft <= 0 {
		return nil
	}
	left := time.Until(leaf.NotAfter)
	expiry := leaf.NotAfter.UTC().Format(time.RFC3339)
	switch {
	case left < 0:
		return failf(ErrCertExpiring, "certificate %q expired %.1f days ago (%s)", leaf.Subject.CommonName, -left.Hours()/24, expiry)
	case left < time.Duration(minDaysLeft)*24*time.Hour:
		return failf(ErrCertExpiring, "certificate %q expires in %.1f days (%s), less than min_days_left %d",
			leaf.Subject.CommonName, left.Hours()/24, expiry, minDaysLeft)
	}
	return nil
}

// withConnDeadline makes conn's I/O obey ctx: its deadline, and cancellation
// before it. The returned stop must be called before conn is dropped.
func withConnDeadline(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
}
