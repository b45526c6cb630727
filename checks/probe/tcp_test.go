package probe

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// tcpServer serves each accepted connection with handle (TLS when cert is
// non-nil) and, when the test ends, closes everything and waits for the
// handlers.
func tcpServer(t *testing.T, cert *tls.Certificate, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Handlers for tcpServer.
var (
	closeAtOnce = func(net.Conn) {}
	banner      = func(c net.Conn) { io.WriteString(c, "SSH-2.0-heartbeat-test\r\n"); io.Copy(io.Discard, c) }
	pingPong    = func(c net.Conn) {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line == "PING\r\n" {
			io.WriteString(c, "PONG ok\r\n")
		}
	}
	chatThenSilence = func(c net.Conn) { io.WriteString(c, "hello\r\n"); io.Copy(io.Discard, c) }
	chargen         = func(c net.Conn) {
		line := []byte(strings.Repeat("abcdefghij", 100))
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}
	resetAtOnce = func(c net.Conn) {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	tlsHandshakeThenRead = func(c net.Conn) {
		if tc, ok := c.(*tls.Conn); ok && tc.Handshake() != nil {
			return
		}
		pingPong(c)
	}
)

func TestTCPProbe(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	open := tcpServer(t, nil, closeAtOnce)
	sshd := tcpServer(t, nil, banner)
	pong := tcpServer(t, nil, pingPong)
	chatty := tcpServer(t, nil, chatThenSilence)
	endless := tcpServer(t, nil, chargen)
	reset := tcpServer(t, nil, resetAtOnce)
	tlsPong := tcpServer(t, &pki.valid, tlsHandshakeThenRead)
	selfSigned := tcpServer(t, &pki.selfSigned, tlsHandshakeThenRead)
	hanging, _ := testkit.BlackHole(t)
	closed := testkit.ClosedAddr(t)
	_, tlsPort, _ := net.SplitHostPort(tlsPong)
	re := regexp.MustCompile

	type row = struct {
		name     string
		target   string
		address  string
		tcp      config.TCPOptions
		tls      config.TLSOptions
		timeout  time.Duration
		wantType string
		wantMsg  string
	}
	tests := []row{
		// GoHeartbeat's cases.
		{name: "GoHeartbeat TCP success", target: open, wantMsg: "Connection to " + open + " successful."},
		{name: "GoHeartbeat TCP empty", target: "", wantType: ErrOther},
		{name: "GoHeartbeat TCP closed port", target: closed, wantType: ErrConnectionRefused},
		{name: "unknown host", target: "nonexistent.invalid:22", wantType: ErrDNS},
		{name: "not host:port", target: "127.0.0.1", wantType: ErrOther},

		// Send and expect.
		{name: "banner expected", target: sshd, tcp: config.TCPOptions{Expect: re("^SSH-2\\.0-")}},
		{name: "banner mismatch", target: sshd, tcp: config.TCPOptions{Expect: re("^220 ")}, timeout: 200 * time.Millisecond, wantType: ErrExpectMismatch},
		{name: "send and expect", target: pong, tcp: config.TCPOptions{Send: "PING\r\n", Expect: re("^PONG")}},
		{name: "send and expect mismatch, peer closes", target: pong, tcp: config.TCPOptions{Send: "PING\r\n", Expect: re("^NOPE")}, wantType: ErrExpectMismatch},
		{name: "wrong send gets nothing", target: pong, tcp: config.TCPOptions{Send: "HELO\r\n", Expect: re("^PONG")}, wantType: ErrExpectMismatch},
		{name: "data then silence", target: chatty, tcp: config.TCPOptions{Expect: re("^bye")}, timeout: 200 * time.Millisecond, wantType: ErrExpectMismatch},
		{name: "silence times out", target: hanging, tcp: config.TCPOptions{Expect: re(".")}, timeout: 200 * time.Millisecond, wantType: ErrTimeout},
		{name: "send only", target: hanging, tcp: config.TCPOptions{Send: "PING\r\n"}},
		{name: "endless data capped", target: endless, tcp: config.TCPOptions{Expect: re("never")}, wantType: ErrExpectMismatch},
		{name: "reset", target: reset, tcp: config.TCPOptions{Expect: re(".")}, wantType: ErrConnectionReset},

		// TLS.
		{name: "TLS send and expect", target: tlsPong, tcp: config.TCPOptions{UseTLS: true, Send: "PING\r\n", Expect: re("^PONG")}, tls: config.TLSOptions{CAFile: pki.caFile}},
		{name: "TLS unknown authority", target: tlsPong, tcp: config.TCPOptions{UseTLS: true}, wantType: ErrTLS},
		{name: "TLS self-signed", target: selfSigned, tcp: config.TCPOptions{UseTLS: true}, tls: config.TLSOptions{CAFile: pki.caFile}, wantType: ErrTLS},
		{name: "TLS self-signed, verify off", target: selfSigned, tcp: config.TCPOptions{UseTLS: true}, tls: config.TLSOptions{InsecureSkipVerify: true}},
		{name: "TLS to plain server", target: sshd, tcp: config.TCPOptions{UseTLS: true}, wantType: ErrTLS},
		{name: "TLS handshake hangs", target: hanging, tcp: config.TCPOptions{UseTLS: true}, timeout: 200 * time.Millisecond, wantType: ErrTimeout},

		// Target.Address: dial it, verify the target's name.
		{name: "address override", target: "heartbeat.test:" + tlsPort, address: tlsPong,
			tcp: config.TCPOptions{UseTLS: true}, tls: config.TLSOptions{CAFile: pki.caFile},
			wantMsg: "Connection to " + tlsPong + " successful."},
		{name: "address override closed", target: open, address: closed, wantType: ErrConnectionRefused},
	}
	runTable(t, tests, func(tc row) tableCase {
		return tableCase{name: tc.name, address: tc.address, wantType: tc.wantType,
			check: config.Check{Type: config.TypeTCP, Target: tc.target, Timeout: tc.timeout, TCP: tc.tcp, TLS: tc.tls}}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		if tc.wantMsg != "" && res.Message != tc.wantMsg {
			t.Errorf("message %q, want %q", res.Message, tc.wantMsg)
		}
		if tc.wantType != "" && !strings.HasPrefix(res.Message, "Connection to ") {
			t.Errorf("message %q", res.Message)
		}
		if res.Success && !peerIs(res, "") {
			t.Errorf("server address %s", res.Peer)
		}
		if res.Success && tc.tcp.UseTLS && res.CertExpiry.IsZero() {
			t.Error("TLS run recorded no certificate expiry")
		}
	})
}
