package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// maxExpectBytes bounds what a tcp check reads while waiting for one expect
// pattern, so a chatty or endless peer costs bounded memory.
const maxExpectBytes = 64 << 10

// probeTCP connects to host:port, optionally over TLS, then runs the
// check's dialogue: send and expect, or the query_response steps.
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
	c := t.Check
	conn, state, err := openTCP(ctx, t, addr, rec)
	if err != nil {
		return err
	}
	defer func() { conn.Close() }()
	// The deadline is set on the raw connection, which a STARTTLS upgrade
	// wraps, so it holds for the whole dialogue.
	stop := withConnDeadline(ctx, conn)
	defer stop()

	certErr := checkCert(res, state, c.TLS.MinDaysLeft)
	steps, numbered := dialogue(c.TCP)
	lr := &lineReader{conn: conn}
	for i, st := range steps {
		if err := runStep(ctx, t, st, numbered, lr, res, rec); err != nil {
			if numbered {
				return fmt.Errorf("step %d of %d: %w", i+1, len(steps), err)
			}
			return err
		}
		if st.StartTLS {
			conn = lr.conn // closing the TLS connection closes the raw one
			certErr = checkCert(res, lr.state, c.TLS.MinDaysLeft)
		}
	}
	return certErr
}

// openTCP connects as connect does: with a TLS handshake first when
// tcp.tls is set. A STARTTLS step also makes the tls options apply, but
// TLS starts later, on the open connection, so the connection is opened as
// for a check without the dialogue.
func openTCP(ctx context.Context, t Target, addr string, rec *recorder) (net.Conn, *tls.ConnectionState, error) {
	if !t.Check.TCP.UseTLS && t.Check.UsesTLS() {
		plain := *t.Check
		plain.TCP.QueryResponse = nil
		t.Check = &plain
	}
	return connect(ctx, t, addr, rec)
}

// dialogue is the check's steps: query_response as written (numbered in
// errors), or send then expect, each its own step.
func dialogue(o config.TCPOptions) (steps []config.QueryStep, numbered bool) {
	if len(o.QueryResponse) > 0 {
		return o.QueryResponse, true
	}
	if o.Send != "" {
		steps = append(steps, config.QueryStep{Send: o.Send})
	}
	if o.Expect != nil {
		steps = append(steps, config.QueryStep{Expect: o.Expect})
	}
	return steps, false
}

// runStep waits for the step's expect, writes its send, then starts TLS,
// in blackbox_exporter's order. A dialogue's sends end in a newline, added
// when missing, as blackbox_exporter writes them; a plain tcp.send is
// written as given.
func runStep(ctx context.Context, t Target, st config.QueryStep, dialogue bool, lr *lineReader, res *Result, rec *recorder) error {
	if st.Expect != nil {
		rec.start(PhaseProcessing)
		if err := lr.expect(st.Expect); err != nil {
			return err // phase left open for finish
		}
		rec.end(PhaseProcessing)
	}
	if send := st.Send; send != "" {
		if dialogue && !strings.HasSuffix(send, "\n") {
			send += "\n"
		}
		rec.start(PhaseRequest)
		if _, err := io.WriteString(lr.conn, send); err != nil {
			return fmt.Errorf("sending: %w", err) // phase left open for finish
		}
		rec.end(PhaseRequest)
	}
	if st.StartTLS {
		cfg, err := tlsConfig(t.Check.TLS, t.Check.Server.Host)
		if err != nil {
			return err
		}
		tc, err := handshake(ctx, rec, lr.conn, cfg)
		if err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
		state := tc.ConnectionState()
		// Bytes that came before the handshake are dropped: after STARTTLS
		// only what arrives over TLS counts.
		lr.conn, lr.buf, lr.state = tc, nil, &state
	}
	return nil
}

// lineReader reads a connection line by line, keeping what arrived after
// a matching line for the next expect.
type lineReader struct {
	conn  net.Conn
	buf   []byte               // received, not yet matched
	state *tls.ConnectionState // after STARTTLS
}

// expect reads until re matches a line (without its "\r\n"), the peer
// closes, maxExpectBytes arrive or the deadline passes. As blackbox_exporter
// does, each line is matched alone; a line still arriving is tried too, so
// prompts and banners without a newline match. Data that arrived but never
// matched is an expect_mismatch even when the deadline ends the wait;
// silence is a timeout.
func (lr *lineReader) expect(re *regexp.Regexp) error {
	received := len(lr.buf)
	chunk := make([]byte, 4096)
	for {
		if lr.match(re) {
			return nil
		}
		if received >= maxExpectBytes {
			return failf(ErrExpectMismatch, "no line matched %q in the first %d bytes", re.String(), maxExpectBytes)
		}
		n, err := lr.conn.Read(chunk[:min(len(chunk), maxExpectBytes-received)])
		received += n
		lr.buf = append(lr.buf, chunk[:n]...)
		if n > 0 && lr.match(re) {
			return nil
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return failf(ErrExpectMismatch, "connection closed after %d bytes without a line matching %q", received, re.String())
		case received > 0 && isTimeout(err):
			return failf(ErrExpectMismatch, "no line matched %q in %d bytes received before the timeout", re.String(), received)
		default:
			return fmt.Errorf("reading: %w", err)
		}
	}
}

// match consumes the buffered lines up to the first that matches re, or
// all complete lines when none does, and then tries the incomplete rest.
func (lr *lineReader) match(re *regexp.Regexp) bool {
	for {
		i := bytes.IndexByte(lr.buf, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimSuffix(lr.buf[:i], []byte("\r"))
		lr.buf = lr.buf[i+1:]
		if re.Match(line) {
			return true
		}
	}
	if len(lr.buf) > 0 && re.Match(lr.buf) {
		lr.buf = lr.buf[:0]
		return true
	}
	return false
}
