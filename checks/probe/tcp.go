package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
)

// maxExpectBytes bounds what a tcp check reads while waiting for its expect
// pattern, so a chatty or endless peer costs bounded memory.
const maxExpectBytes = 64 << 10

// probeTCP connects to host:port, optionally over TLS, optionally sends a
// string and waits for a pattern.
func probeTCP(ctx context.Context, t Target) Result {
	addr := dialAddress(t)
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		// GoHeartbeat's line, kept verbatim for users grepping their syslog.
		return fmt.Sprintf("Connection to %s successful.", addr), doTCP(ctx, t, addr, res, rec)
	}, func(reason string) string {
		return fmt.Sprintf("Connection to %s failed: %s", addr, reason)
	})
}

func doTCP(ctx context.Context, t Target, addr string, res *Result, rec *recorder) error {
	opts := t.Check.TCP
	conn, state, err := connect(ctx, t, addr, rec)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := withConnDeadline(ctx, conn)
	defer stop()

	certErr := checkCert(res, state, t.Check.TLS.MinDaysLeft)
	if opts.Send != "" {
		rec.start(PhaseRequest)
		if _, err := io.WriteString(conn, opts.Send); err != nil {
			return fmt.Errorf("sending: %w", err) // phase left open for finish
		}
		rec.end(PhaseRequest)
	}
	if opts.Expect != nil {
		rec.start(PhaseProcessing)
		if err := expect(conn, opts.Expect); err != nil {
			return err // phase left open for finish
		}
		rec.end(PhaseProcessing)
	}
	return certErr
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
