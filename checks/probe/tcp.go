package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"time"
)

// maxExpectBytes bounds what a tcp check reads while waiting for its expect
// pattern, so a chatty or endless peer costs bounded memory.
const maxExpectBytes = 64 << 10

// probeTCP connects to host:port, optionally over TLS, optionally sends a
// string and waits for a pattern.
func probeTCP(ctx context.Context, t Target) Result {
	res := Result{Start: time.Now()}
	rec := newPhaseRecorder()
	addr := dialAddress(t)
	err := doTCP(ctx, t, addr, &res, rec)
	finish(ctx, &res, rec, err)
	if res.Success {
		// The seed's line, kept verbatim for users grepping their syslog.
		res.Message = fmt.Sprintf("Connection to %s successful.", addr)
	} else {
		res.Message = fmt.Sprintf("Connection to %s failed: %s", addr, res.Reason)
	}
	return res
}

func doTCP(ctx context.Context, t Target, addr string, res *Result, rec *phaseRecorder) error {
	opts := t.Check.TCP
	conn, state, err := connect(ctx, t, addr, opts.UseTLS, rec)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := withConnDeadline(ctx, conn)
	defer stop()

	var certErr error
	if state != nil {
		certErr = checkCert(res, state, t.Check.TLS.MinDaysLeft)
	}
	if opts.Send != "" {
		rec.start(PhaseRequest)
		if _, err := io.WriteString(conn, opts.Send); err != nil {
			return fmt.Errorf("sending: %w", err) // phase left open for finish
		}
		rec.end(PhaseRequest)
	}
	if opts.Expect != nil {
		rec.start(PhaseTTFB)
		if err := expect(conn, opts.Expect); err != nil {
			return err // phase left open for finish
		}
		rec.end(PhaseTTFB)
	}
	return certErr
}

// dialAddress is the host:port a tcp, tls or grpc run dials.
func dialAddress(t Target) string {
	if t.Address != "" {
		return t.Address
	}
	return t.Check.Target
}

// connect dials addr and, with useTLS, completes a handshake verified
// against the check's TLS options and the target's host name (never the
// override address's). The returned state is nil without TLS.
func connect(ctx context.Context, t Target, addr string, useTLS bool, rec *phaseRecorder) (net.Conn, *tls.ConnectionState, error) {
	if addr == "" {
		return nil, nil, failf(ErrOther, "empty address")
	}
	var cfg *tls.Config
	if useTLS {
		host, _, err := net.SplitHostPort(t.Check.Target)
		if err != nil {
			return nil, nil, failf(ErrOther, "target %q is not host:port: %v", t.Check.Target, err)
		}
		if cfg, err = tlsConfig(t.Check.TLS, host); err != nil {
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

// expect reads until re matches what has arrived, the peer closes, the cap is
// reached or the deadline passes. Data that arrived but never matched is an
// expect_mismatch even when the deadline ends the wait; silence is a timeout.
func expect(conn net.Conn, re *regexp.Regexp) error {
	var buf []byte
	chunk := make([]byte, 4096)
	for {
		n, err := conn.Read(chunk[:min(len(chunk), maxExpectBytes-len(buf))])
		buf = append(buf, chunk[:n]...)
		if n > 0 && re.Match(buf) {
			return nil
		}
		if len(buf) >= maxExpectBytes {
			return failf(ErrExpectMismatch, "no match for %q in the first %d bytes", re.String(), maxExpectBytes)
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return failf(ErrExpectMismatch, "connection closed after %d bytes without a match for %q", len(buf), re.String())
		case len(buf) > 0 && isTimeout(err):
			return failf(ErrExpectMismatch, "no match for %q in %d bytes received before the timeout", re.String(), len(buf))
		default:
			return fmt.Errorf("reading: %w", err)
		}
	}
}
