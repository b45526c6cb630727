package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/netip"
	"os"
	"strings"
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

// dial connects to addr over network ("tcp" or "udp") as t's dial options
// say, within ctx, recording dns and connect phases on rec (when not nil).
func dial(ctx context.Context, t Target, rec *recorder, network, addr string) (net.Conn, error) {
	if rec != nil {
		ctx = httptrace.WithClientTrace(ctx, rec.dialTrace())
	}
	return netDialer{t.Check.Dial}.DialContext(ctx, network, addr)
}

// netDialer makes a check's connections: from its source address, in the
// address family ip_protocol names.
type netDialer struct {
	opts config.DialOptions
}

// DialContext dials as net.Dialer does. With ip_protocol set it asks only
// for that family's addresses, and, unless ip_protocol_fallback is false,
// for the other family's when the host has none; as in blackbox_exporter,
// a failed connection is not retried in the other family.
func (nd netDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if a := nd.opts.SourceAddress; a.IsValid() {
		// net.Dialer then dials only addresses of the source's family.
		d.LocalAddr = localAddr(network, a)
	}
	var preferred, other string
	switch nd.opts.IPProtocol {
	case "ip4":
		preferred, other = "4", "6"
	case "ip6":
		preferred, other = "6", "4"
	default:
		return d.DialContext(ctx, network, addr)
	}
	conn, err := d.DialContext(ctx, network+preferred, addr)
	if err == nil || nd.opts.NoIPProtocolFallback || !noAddressInFamily(err) {
		return conn, err
	}
	return d.DialContext(ctx, network+other, addr)
}

// localAddr is a as the local address type network needs.
func localAddr(network string, a netip.Addr) net.Addr {
	if strings.HasPrefix(network, "udp") {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
	}
	return net.TCPAddrFromAddrPort(netip.AddrPortFrom(a, 0))
}

// noAddressInFamily reports whether a dial failed because the host has no
// address in the family asked for (an IP literal of the other family, or a
// name without such records), not because connecting failed.
func noAddressInFamily(err error) bool {
	var (
		addrErr *net.AddrError
		dnsErr  *net.DNSError
	)
	return errors.As(err, &addrErr) || errors.As(err, &dnsErr) && dnsErr.IsNotFound
}

// Preload does the one-time work the first runs of checks would otherwise count, such as loading the system roots.
func Preload(checks []config.Check) {
	// Called before any run's clock starts; the roots are loaded only when
	// a check may verify a certificate against them.
	for i := range checks {
		c := &checks[i]
		if c.UsesTLS() && c.TLS.CAFile == "" && !c.TLS.InsecureSkipVerify {
			// crypto/x509 keeps the pool for the process; an error is the
			// runs' to report.
			_, _ = x509.SystemCertPool()
			return
		}
	}
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
	conn, err := dial(ctx, t, rec, "tcp", addr)
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
		// targets); an expired leaf still fails unless allow_expired says
		// otherwise, and min_days_left still applies.
		InsecureSkipVerify: opts.InsecureSkipVerify, //nolint:gosec // user's choice per check
		MinVersion:         opts.MinVersion,
	}
	if opts.InsecureSkipVerify && !opts.AllowExpired {
		cfg.VerifyConnection = rejectExpired
	}
	if opts.ServerName != "" {
		cfg.ServerName = opts.ServerName
	}
	if opts.CertFile != "" {
		cfg.GetClientCertificate = clientCert(opts.CertFile, opts.KeyFile)
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
	switch {
	case left < 0:
		return &expiredError{leaf: leaf}
	case left < time.Duration(minDaysLeft)*24*time.Hour:
		return failf(ErrCertExpiring, "certificate %q expires in %.1f days (%s), less than min_days_left %d",
			leaf.Subject.CommonName, left.Hours()/24, leaf.NotAfter.UTC().Format(time.RFC3339), minDaysLeft)
	}
	return nil
}

// expiredError is an expired leaf certificate (error.type cert_expiring);
// it carries the leaf so a run cut short in the handshake still reports
// the expiry.
type expiredError struct {
	leaf *x509.Certificate
}

func (e *expiredError) Error() string {
	return fmt.Sprintf("certificate %q expired %.1f days ago (%s)", e.leaf.Subject.CommonName,
		-time.Until(e.leaf.NotAfter).Hours()/24, e.leaf.NotAfter.UTC().Format(time.RFC3339))
}

// rejectExpired fails a handshake whose leaf has expired; it runs when
// verification is skipped, which would otherwise accept it.
func rejectExpired(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) > 0 && time.Now().After(cs.PeerCertificates[0].NotAfter) {
		return &expiredError{leaf: cs.PeerCertificates[0]}
	}
	return nil
}

// clientCert loads the client certificate each time a server asks for one,
// so a rotated pair is used without a reload.
func clientCert(certFile, keyFile string) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		cert, err := config.LoadClientCert(certFile, keyFile)
		if err != nil {
			return nil, failf(ErrOther, "loading client certificate: %v", err)
		}
		return &cert, nil
	}
}

// withConnDeadline makes conn's I/O obey ctx: its deadline, and cancellation
// before it. The returned stop must be called before conn is dropped.
func withConnDeadline(ctx context.Context, conn net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
}
