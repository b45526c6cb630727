package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http/httptrace"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// proberFor returns the probe function for a check type (one of the
// config.Type* constants). The returned function never panics: a bug in a
// prober becomes a failed run with error.type "other".
func proberFor(checkType string) (ProbeFunc, bool) {
	var f ProbeFunc
	switch checkType {
	case config.TypeHTTP:
		f = probeHTTP
	case config.TypeTCP:
		f = probeTCP
	case config.TypeTLS:
		f = probeTLS
	case config.TypeDNS:
		f = probeDNS
	case config.TypeGRPC:
		f = probeGRPC
	default:
		return nil, false
	}
	return guard(f), true
}

// guard wraps a prober so that a nil check or a panic yields a failed Result
// instead of taking the scheduler down.
func guard(f ProbeFunc) ProbeFunc {
	return func(ctx context.Context, t Target) (res Result) {
		start := time.Now()
		if t.Check == nil {
			return Result{Start: start, ErrorType: ErrOther, Reason: "no check configured", Message: "no check configured"}
		}
		defer func() {
			if p := recover(); p != nil {
				reason := fmt.Sprintf("internal error: %s prober panicked: %v", t.Check.Type, p)
				res = Result{Start: start, Duration: time.Since(start), ErrorType: ErrOther, Reason: reason,
					Message: t.Check.DisplayTarget() + ": " + reason}
			}
		}()
		return f(ctx, t)
	}
}

// phaseDurations sums a result's phases by name; phases repeat when an HTTP
// run follows redirects (one set per hop) or a dial tries several addresses.
func phaseDurations(r Result) map[string]time.Duration {
	m := make(map[string]time.Duration, len(r.Phases))
	for _, p := range r.Phases {
		m[p.Name] += p.End.Sub(p.Start)
	}
	return m
}

// phaseRecorder collects the phases of one run from httptrace hooks, which
// may fire on the transport's goroutines, hence the mutex.
type phaseRecorder struct {
	mu     sync.Mutex
	phases []PhaseTiming
	open   map[string]time.Time
	// remote is the address of the last connection established.
	remote string
}

func newPhaseRecorder() *phaseRecorder {
	return &phaseRecorder{open: make(map[string]time.Time, 4)}
}

// start opens a phase; a phase already open (parallel connect attempts of a
// happy-eyeballs dial) keeps its first start.
func (r *phaseRecorder) start(name string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.open[name]; !ok {
		r.open[name] = now
	}
}

// end closes a phase if it is open.
func (r *phaseRecorder) end(name string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.endLocked(name, now)
}

func (r *phaseRecorder) endLocked(name string, now time.Time) {
	if s, ok := r.open[name]; ok {
		r.phases = append(r.phases, PhaseTiming{Name: name, Start: s, End: now})
		delete(r.open, name)
	}
}

func (r *phaseRecorder) connected(addr string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.remote = addr
}

// finish closes the phases still open at now (the ones a timeout cut short)
// and returns every phase in start order, the name of the latest phase that
// was still running, and the remote address.
func (r *phaseRecorder) finish(now time.Time) (phases []PhaseTiming, running, remote string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var latest time.Time
	for name, s := range r.open {
		if running == "" || s.After(latest) {
			running, latest = name, s
		}
	}
	for name := range r.open {
		r.endLocked(name, now)
	}
	sort.SliceStable(r.phases, func(i, j int) bool { return r.phases[i].Start.Before(r.phases[j].Start) })
	return r.phases, running, r.remote
}

// dialTrace records the dns and connect phases of a net.Dialer dial (the net
// package reports them through httptrace's context hooks). A phase that
// fails stays open: finish closes it and names it in a timeout's reason, and
// a retry on another address extends it.
func (r *phaseRecorder) dialTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { r.start(PhaseDNS) },
		DNSDone: func(info httptrace.DNSDoneInfo) {
			if info.Err == nil {
				r.end(PhaseDNS)
			}
		},
		ConnectStart: func(_, _ string) { r.start(PhaseConnect) },
		ConnectDone: func(_, addr string, err error) {
			if err == nil {
				r.end(PhaseConnect)
				r.connected(addr)
			}
		},
	}
}

// dial connects to addr within ctx, recording dns and connect phases.
func dial(ctx context.Context, rec *phaseRecorder, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(httptrace.WithClientTrace(ctx, rec.dialTrace()), network, addr)
}

// handshake runs a TLS client handshake over conn, recording the tls phase.
func handshake(ctx context.Context, rec *phaseRecorder, conn net.Conn, cfg *tls.Config) (*tls.Conn, error) {
	rec.start(PhaseTLS)
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, err
	}
	rec.end(PhaseTLS)
	return tc, nil
}

// finish fills in the bookkeeping every prober shares: duration, phases,
// dialled address, and on failure the error.type and a secret-free reason.
func finish(ctx context.Context, res *Result, rec *phaseRecorder, err error) {
	now := time.Now()
	res.Duration = now.Sub(res.Start)
	phases, running, remote := rec.finish(now)
	res.Phases = phases
	if res.ServerAddress == "" && remote != "" {
		res.ServerAddress, res.ServerPort = splitAddr(remote)
	}
	if err == nil {
		res.Success = true
		return
	}
	res.Success = false
	res.ErrorType = classify(ctx, err)
	res.Reason = reason(err, res.ErrorType, res.Duration, running)
}

// reason turns err into the text of Result.Reason. url.Error is unwrapped
// because it repeats the URL, whose query may hold tokens.
func reason(err error, errType string, elapsed time.Duration, running string) string {
	if errType == ErrTimeout {
		if running != "" {
			return fmt.Sprintf("timed out after %v during %s", elapsed.Round(time.Millisecond), running)
		}
		return fmt.Sprintf("timed out after %v", elapsed.Round(time.Millisecond))
	}
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// splitAddr splits "host:port"; an unparsable address is returned whole
// with port 0.
func splitAddr(addr string) (string, int) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	p, _ := strconv.Atoi(port)
	return host, p
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
