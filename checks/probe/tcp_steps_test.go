package probe

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// smtpServer speaks enough ESMTP for a STARTTLS check: a multi-line
// greeting, EHLO (offering STARTTLS only before TLS), STARTTLS with cert,
// QUIT. Unknown commands get 500.
func smtpServer(cert tls.Certificate) func(net.Conn) {
	return func(c net.Conn) {
		io.WriteString(c, "220-mail.heartbeat.test ESMTP\r\n220 ready\r\n")
		var conn net.Conn = c
		r := bufio.NewReader(conn)
		secure := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.TrimRight(line, "\r\n")); {
			case strings.HasPrefix(cmd, "EHLO "):
				if secure {
					io.WriteString(conn, "250-mail.heartbeat.test\r\n250 AUTH PLAIN\r\n")
				} else {
					io.WriteString(conn, "250-mail.heartbeat.test\r\n250-STARTTLS\r\n250 SIZE 1000\r\n")
				}
			case cmd == "STARTTLS" && !secure:
				io.WriteString(conn, "220 go ahead\r\n")
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				if tc.Handshake() != nil {
					return
				}
				conn, r, secure = tc, bufio.NewReader(tc), true
			case cmd == "QUIT":
				io.WriteString(conn, "221 bye\r\n")
				return
			default:
				io.WriteString(conn, "500 unknown command\r\n")
			}
		}
	}
}

// redisServer answers inline PING with +PONG and anything else with -ERR,
// as redis-server does for inline commands (ended by \n or \r\n).
func redisServer(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if strings.TrimRight(line, "\r\n") == "PING" {
			io.WriteString(c, "+PONG\r\n")
		} else {
			io.WriteString(c, "-ERR unknown command\r\n")
		}
	}
}

func TestTCPExpectPerLine(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	smtp := tcpServer(t, nil, smtpServer(pki.valid))
	re := regexp.MustCompile
	type row = struct {
		name     string
		expect   string
		wantType string
	}
	tests := []row{
		{name: "second line of a multi-line banner", expect: "^220 ready$"},
		{name: "first line", expect: "^220-mail"},
		{name: "no line matches", expect: "^250 ", wantType: ErrExpectMismatch},
		{name: "a pattern spanning lines matches none", expect: "ESMTP\r\n220", wantType: ErrExpectMismatch},
	}
	runTable(t, tests, func(tc row) tableCase {
		return tableCase{name: tc.name, wantType: tc.wantType,
			check: config.Check{Type: config.TypeTCP, Target: smtp, Timeout: 300 * time.Millisecond, TCP: config.TCPOptions{Expect: re(tc.expect)}}}
	}, nil)
}

func TestTCPQueryResponse(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	smtp := tcpServer(t, nil, smtpServer(pki.valid))
	redis := tcpServer(t, nil, redisServer)
	// Answers whatever comes after its banner in plain text, a ClientHello too.
	plainOnly := tcpServer(t, nil, func(c net.Conn) {
		io.WriteString(c, "220 ready\r\n")
		if _, err := c.Read(make([]byte, 1024)); err == nil {
			io.WriteString(c, "500 what?\r\n")
		}
	})

	// The STARTTLS dialogue of blackbox_exporter's smtp_starttls example
	// module, sends written as there (a "\n" is added to each).
	const starttls = `
        - expect: "^220 ready$"
        - send: "EHLO prober\r"
        - expect: "^250-STARTTLS"
        - send: "STARTTLS\r"
        - expect: "^220"
        - starttls: true
        - send: "EHLO prober\r"
        - expect: "^250 AUTH"
        - send: "QUIT\r"
        - expect: "^221"`
	type row = struct {
		name     string
		target   string
		steps    string
		tls      string // the tls block's flow mapping contents
		wantType string
		wantMsg  string // substring of the message
	}
	ca := "ca_file: " + pki.caFile
	tests := []row{
		{name: "SMTP STARTTLS", target: smtp, steps: starttls, tls: ca},
		{name: "SMTP STARTTLS, certificate not trusted", target: smtp, steps: starttls, wantType: ErrTLS},
		{name: "SMTP STARTTLS, min_days_left", target: smtp, steps: starttls, tls: ca + ", min_days_left: 3650", wantType: ErrCertExpiring},
		{name: "SMTP without STARTTLS", target: smtp, steps: `
        - expect: "^220 "
        - send: "EHLO prober\r\n"
        - expect: "^250 SIZE"`},
		{name: "SMTP step mismatch names the step", target: smtp, steps: `
        - expect: "^220 "
        - send: "HELP"
        - expect: "^214"`, wantType: ErrExpectMismatch, wantMsg: "step 3"},
		{name: "Redis PING", target: redis, steps: `
        - send: PING
        - expect: "^\\+PONG$"`},
		{name: "Redis wrong answer", target: redis, steps: `
        - send: PONG
        - expect: "^\\+PONG$"`, wantType: ErrExpectMismatch},
		{name: "starttls to a server without TLS", target: plainOnly, steps: `
        - expect: "^220 "
        - starttls: true`, wantType: ErrTLS, wantMsg: "step 2 of 2: starttls: tls: "},
	}
	runTable(t, tests, func(tc row) tableCase {
		yaml := fmt.Sprintf("checks:\n  - name: x\n    type: tcp\n    target: %q\n    timeout: 1s\n    tcp:\n      query_response:%s\n", tc.target, tc.steps)
		if tc.tls != "" {
			yaml += "    tls: {" + tc.tls + "}\n"
		}
		return tableCase{name: tc.name, wantType: tc.wantType, check: parseCheck(t, config.TypeTCP, yaml)}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		if tc.wantMsg != "" && !strings.Contains(res.Message, tc.wantMsg) {
			t.Errorf("message %q lacks %q", res.Message, tc.wantMsg)
		}
		if res.Success && strings.Contains(tc.steps, "starttls") && res.CertExpiry.IsZero() {
			t.Error("STARTTLS run recorded no certificate expiry")
		}
	})
}
