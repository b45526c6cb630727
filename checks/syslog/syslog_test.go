package syslog

import (
	"bufio"
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// scriptProbe answers from a script of outcomes, then repeats the last one.
type scriptProbe struct {
	mu     sync.Mutex
	script []bool
	i      int
}

func newScriptProbe(script ...bool) *scriptProbe {
	return &scriptProbe{script: script}
}

func (p *scriptProbe) probe(context.Context, Target) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	ok := p.script[min(p.i, len(p.script)-1)]
	p.i++
	if ok {
		return fakeOK
	}
	return fakeRefused
}

var traceIDRE = regexp.MustCompile(`trace_id=([0-9a-f]{32})`)

func TestTransitionsAlertOnce(t *testing.T) {
	const F, S = false, true
	cases := []struct {
		name         string
		script       []bool
		failTh, okTh int
		want         []string
	}{
		{"initially failing alerts", []bool{F}, 1, 1, []string{"ALERT"}},
		{"initially passing is silent", []bool{S, S}, 1, 1, nil},
		{"failure threshold 3", []bool{F, F, S, F, F, F, F}, 3, 1, []string{"ALERT"}},
		{"flapping below threshold", []bool{F, F, S, F, F, S}, 3, 1, nil},
		{"recovery needs 2 successes", []bool{F, S, F, S, S, S}, 1, 2, []string{"ALERT", "NOTICE"}},
		{"down up down", []bool{F, S, F}, 1, 1, []string{"ALERT", "NOTICE", "ALERT"}},
		{"passing then failing", []bool{S, S, F, F}, 2, 1, []string{"ALERT"}},
	}
	for _, network := range []string{"udp", "unixgram"} {
		for _, tc := range cases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				sl := listenSyslog(t, network, "")
				p := newScriptProbe(tc.script...)
				h := newHarness(t, func(s *Settings) { s.Syslog.Addr = sl.addr }, p.probe)
				c := schedCheck("peers", 5*time.Millisecond)
				c.Type, c.Target = config.TypeHTTP, "http://user:s3cret@127.0.0.1:9/heartbeat/1"
				c.FailureThreshold, c.SuccessThreshold = tc.failTh, tc.okTh
				h.apply(c)
				h.start()
				// Wait for the runs to be recorded, not just probed: a run
				// still in flight at shutdown is discarded.
				eventually(t, 10*time.Second, "the script to be used up", func() bool {
					return h.status("peers").Runs >= uint64(len(tc.script))
				})
				h.stop()
				lines := sl.drain(t)

				if len(lines) != len(tc.want) {
					t.Fatalf("got %d syslog lines, want %d (%v): %q", len(lines), len(tc.want), tc.want, lines)
				}
				spans := map[string]sdktrace.ReadOnlySpan{}
				for _, s := range h.spans.Ended() {
					if s.Name() == "probe peers" {
						spans[s.SpanContext().TraceID().String()] = s
					}
				}
				recs := h.logs.records()
				if len(recs) != len(tc.want) {
					t.Fatalf("got %d OTel log records, want %d", len(recs), len(tc.want))
				}
				for i, raw := range lines {
					l, err := parseSyslog(raw, sl.local)
					if err != nil {
						t.Fatal(err)
					}
					wantPri, wantSev := 9, otellog.SeverityError3 // user.alert
					if tc.want[i] == "NOTICE" {
						wantPri, wantSev = 13, otellog.SeverityInfo2 // user.notice
					}
					if l.pri != wantPri || l.tag != "heartbeat" {
						t.Errorf("line %d: priority %d tag %q, want %d heartbeat: %q", i, l.pri, l.tag, wantPri, raw)
					}
					for _, want := range []string{tc.want[i] + " ", "check=peers ", "target=http://user:xxxxx@127.0.0.1:9/heartbeat/1 "} {
						if !strings.Contains(l.msg, want) {
							t.Errorf("line %d lacks %q: %q", i, want, l.msg)
						}
					}
					if tc.want[i] == "ALERT" {
						for _, want := range []string{"state=down", `reason="connection refused"`, "error.type=connection_refused"} {
							if !strings.Contains(l.msg, want) {
								t.Errorf("line %d lacks %q: %q", i, want, l.msg)
							}
						}
					} else if !strings.Contains(l.msg, "state=up") {
						t.Errorf("line %d lacks state=up: %q", i, l.msg)
					}
					m := traceIDRE.FindStringSubmatch(l.msg)
					if m == nil {
						t.Fatalf("line %d has no trace id: %q", i, l.msg)
					}
					span, ok := spans[m[1]]
					if !ok {
						t.Fatalf("line %d: no probe span with trace id %s", i, m[1])
					}
					if wantErr := tc.want[i] == "ALERT"; (span.Status().Code == codes.Error) != wantErr {
						t.Errorf("line %d: span status %v, want error %v", i, span.Status(), wantErr)
					}

					rec := recs[i]
					if rec.Body().AsString() != l.msg {
						t.Errorf("log record %d body %q, want the syslog text %q", i, rec.Body().AsString(), l.msg)
					}
					if rec.Severity() != wantSev || rec.SeverityText() != tc.want[i] {
						t.Errorf("log record %d severity %v %q, want %v %q", i, rec.Severity(), rec.SeverityText(), wantSev, tc.want[i])
					}
					if rec.TraceID().String() != m[1] || rec.SpanID() != span.SpanContext().SpanID() {
						t.Errorf("log record %d trace %s span %s, want the run's %s %s", i, rec.TraceID(), rec.SpanID(), m[1], span.SpanContext().SpanID())
					}
				}
				for _, out := range append(lines, h.slog.String()) {
					if strings.Contains(out, "s3cret") {
						t.Errorf("password leaked: %q", out)
					}
				}
			})
		}
	}
}

func TestSyslogDownChecksGoOn(t *testing.T) {
	const checks = 6
	path := shortTempDir(t) + "/log.sock" // nothing listens here yet
	h := newHarness(t, func(s *Settings) {
		s.Syslog = SyslogConfig{Addr: "unix://" + path, QueueSize: 2, retryMin: 5 * time.Millisecond, retryMax: 20 * time.Millisecond}
	}, func(context.Context, Target) Result { return fakeRefused })
	var cs []config.Check
	for i := range checks {
		cs = append(cs, schedCheck(string(rune('a'+i)), 10*time.Millisecond))
	}
	h.apply(cs...)
	h.start()

	eventually(t, 10*time.Second, "every check to run 5 times", func() bool {
		for _, c := range cs {
			if h.status(c.Name).Runs < 5 {
				return false
			}
		}
		return true
	})
	dropped := counterSum(h.metrics(), "heartbeat.alerts.dropped", nil)
	// One alert is in the sender's hands and two wait in the queue.
	if dropped < checks-3 {
		t.Errorf("dropped %d alerts, want at least %d", dropped, checks-3)
	}
	if n := strings.Count(h.slog.String(), "queue full"); n != 1 {
		t.Errorf("queue-full logged %d times, want once:\n%s", n, h.slog.String())
	}
	if n := strings.Count(h.slog.String(), "syslog unreachable"); n != 1 {
		t.Errorf("syslog outage logged %d times, want once:\n%s", n, h.slog.String())
	}

	// Syslog comes up: the queued alerts arrive, each once.
	sl := listenSyslog(t, "unixgram", path)
	var got []string
	eventually(t, 10*time.Second, "queued alerts to arrive", func() bool {
		for {
			select {
			case l := <-sl.lines:
				got = append(got, l)
				continue
			default:
			}
			return int64(len(got)) >= checks-dropped
		}
	})
	h.stop()
	got = append(got, sl.drain(t)...)
	if int64(len(got)) != checks-dropped {
		t.Errorf("got %d alerts after recovery, want %d: %q", len(got), checks-dropped, got)
	}
	for _, raw := range got {
		if l, err := parseSyslog(raw, true); err != nil || l.pri != 9 {
			t.Errorf("bad alert line %q: %v", raw, err)
		}
	}
}

// TestSyslogTCPReconnects delivers over TCP, and after the daemon drops the
// connection, redials and delivers the next alert.
func TestSyslogTCPReconnects(t *testing.T) {
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
	sink, err := newAlertSink(SyslogConfig{Addr: "tcp://" + ln.Addr().String(), retryMin: time.Millisecond, retryMax: 5 * time.Millisecond},
		newHarness(t, nil, nil).r.log, func(context.Context) { t.Error("alert dropped") })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sink.run(ctx) }()
	defer func() { cancel(); <-done }()

	for i, text := range []string{"ALERT first", "NOTICE second", "ALERT third"} {
		sink.enqueue(ctx, alertMsg{severity: sevAlert, text: text, at: time.Now()})
		select {
		case line := <-lines:
			l, err := parseSyslog(line, false)
			if err != nil {
				t.Fatal(err)
			}
			if l.msg != text || l.pri != 9 || l.host == "" {
				t.Errorf("alert %d: got %+v, want text %q priority 9", i, l, text)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("alert %d not delivered", i)
		}
	}
}

func TestSyslogConfigValidate(t *testing.T) {
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
		c := SyslogConfig{Addr: tc.addr}
		err := c.Validate()
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.addr, err, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrBadSyslogAddr) {
			t.Errorf("%q: error %v does not wrap ErrBadSyslogAddr", tc.addr, err)
		}
	}
}

func TestLogfmtValue(t *testing.T) {
	cases := map[string]string{
		"peers":              "peers",
		"connection refused": `"connection refused"`,
		"":                   `""`,
		`say "hi"`:           `"say \"hi\""`,
		"a=b":                `"a=b"`,
		"line\nbreak":        `"line\nbreak"`,
		"http://h:80/x?a":    "http://h:80/x?a",
	}
	for in, want := range cases {
		if got := logfmtValue(in); got != want {
			t.Errorf("logfmtValue(%q) = %s, want %s", in, got, want)
		}
	}
}
