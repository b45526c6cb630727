// Package syslogtest is a real syslog endpoint for tests: a UDP or unix
// datagram socket that hands over the lines it receives, and a parser for
// log/syslog's two line formats.
package syslogtest

import (
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// Listener is a real syslog endpoint: a UDP or unix datagram socket whose lines arrive on Lines.
type Listener struct {
	conn net.PacketConn
	// Addr is the listener's address in syslog.Config.Addr form.
	Addr string
	// Local is set for a unix socket, where lines have log/syslog's local form.
	Local bool
	// Lines receives every datagram.
	Lines chan string
}

const sentinel = "-- end of test --"

// Listen starts a listener on udp 127.0.0.1:0, or on a unixgram socket at path (a fresh one for "").
func Listen(t testing.TB, network, path string) *Listener {
	t.Helper()
	var (
		conn net.PacketConn
		err  error
		l    = &Listener{Lines: make(chan string, 10000)}
	)
	switch network {
	case "udp":
		conn, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err == nil {
			l.Addr = "udp://" + conn.LocalAddr().String()
		}
	case "unixgram":
		if path == "" {
			path = ShortTempDir(t) + "/log.sock"
		}
		conn, err = net.ListenPacket("unixgram", path)
		l.Addr, l.Local = "unix://"+path, true
	}
	if err != nil {
		t.Fatalf("listen %s: %v", network, err)
	}
	l.conn = conn
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(l.Lines)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			l.Lines <- string(buf[:n])
		}
	}()
	return l
}

// ShortTempDir returns a temporary directory with a path short enough for a unix socket.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	// t.TempDir paths can exceed the 108 bytes a unix socket path may have.
	dir, err := os.MkdirTemp("", "hbsys")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Drain returns every line received before the call.
func (l *Listener) Drain(t testing.TB) []string {
	t.Helper()
	// A sentinel datagram to itself: datagrams are delivered in order, so
	// once the sentinel is read back, everything sent before has been read.
	network := "udp"
	if l.Local {
		network = "unixgram"
	}
	c, err := net.Dial(network, l.conn.LocalAddr().String())
	if err != nil {
		t.Fatalf("dial own syslog listener: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(sentinel)); err != nil {
		t.Fatalf("write sentinel: %v", err)
	}
	var out []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line := <-l.Lines:
			if line == sentinel {
				return out
			}
			out = append(out, line)
		case <-timeout:
			t.Fatalf("sentinel not received; got %q", out)
		}
	}
}

// Line is one parsed RFC 3164 line as log/syslog writes it.
type Line struct {
	Pri  int
	Tag  string
	PID  int
	Host string // network form only
	Msg  string
}

var (
	localLineRE   = regexp.MustCompile(`^<(\d{1,3})>([A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d) ([^\[ ]+)\[(\d+)\]: (.*)\n$`)
	networkLineRE = regexp.MustCompile(`^<(\d{1,3})>(\S+) (\S+) ([^\[ ]+)\[(\d+)\]: (.*)\n$`)
)

// Parse reads one line in log/syslog's local (unix socket) or network form.
func Parse(line string, local bool) (Line, error) {
	var l Line
	if local {
		m := localLineRE.FindStringSubmatch(line)
		if m == nil {
			return l, fmt.Errorf("not a local syslog line: %q", line)
		}
		if _, err := time.Parse(time.Stamp, m[2]); err != nil {
			return l, fmt.Errorf("time stamp %q: %w", m[2], err)
		}
		l.Pri, _ = strconv.Atoi(m[1])
		l.Tag, l.Msg = m[3], m[5]
		l.PID, _ = strconv.Atoi(m[4])
		return l, nil
	}
	m := networkLineRE.FindStringSubmatch(line)
	if m == nil {
		return l, fmt.Errorf("not a network syslog line: %q", line)
	}
	if _, err := time.Parse(time.RFC3339, m[2]); err != nil {
		return l, fmt.Errorf("time stamp %q: %w", m[2], err)
	}
	l.Pri, _ = strconv.Atoi(m[1])
	l.Host, l.Tag, l.Msg = m[3], m[4], m[6]
	l.PID, _ = strconv.Atoi(m[5])
	return l, nil
}
