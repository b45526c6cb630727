package syslog

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/syslog/syslogtest"
)

// TestTCPReconnects delivers over TCP, and after the daemon drops the
// connection, redials and delivers the next alert.
func TestTCPReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	lines := make(chan string, 10)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read one line per connection, then hang up, as a restarting daemon would.
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			lines <- line
		}
	}()
	sink, err := New(Config{Addr: "tcp://" + ln.Addr().String(), RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond},
		slog.New(slog.DiscardHandler), func(context.Context) { t.Error("alert dropped") })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sink.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for i, text := range []string{"ALERT first", "NOTICE second", "ALERT third"} {
		sink.Send(ctx, Alert, text, time.Now())
		select {
		case line := <-lines:
			l, err := syslogtest.Parse(line, false)
			if err != nil {
				t.Fatal(err)
			}
			if l.Msg != text || l.Pri != 9 || l.Host == "" {
				t.Errorf("alert %d: got %+v, want text %q priority 9", i, l, text)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("alert %d not delivered", i)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		addr    string
		wantErr bool
	}{
		{"", false},
		{"none", false},
		{"udp://127.0.0.1:514", false},
		{"tcp://logs.example.com:601", false},
		{"unix:///dev/log", false},
		{"udp://127.0.0.1", true},
		{"tcp://:", true},
		{"unix://relative/path", true},
		{"http://127.0.0.1:514", true},
		{"127.0.0.1:514", true},
	}
	for _, tc := range cases {
		c := Config{Addr: tc.addr}
		err := c.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.addr, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadAddr) {
			t.Errorf("%q: error %v does not wrap ErrBadAddr", tc.addr, err)
		}
	}
}
