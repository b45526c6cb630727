package checks

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog/syslogtest"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
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

func (p *scriptProbe) probe(context.Context, probe.Target) probe.Result {
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
				sl := syslogtest.Listen(t, network, "")
				p := newScriptProbe(tc.script...)
				h := newHarness(t, func(s *Settings) { s.Syslog.Addr = sl.Addr }, p.probe)
				c := schedCheck("peers", 5*time.Millisecond)
				c.Type, c.Target = config.TypeHTTP, "http://user:s3cret@127.0.0.1:9/heartbeat/1"
				c.FailureThreshold, c.SuccessThreshold = tc.failTh, tc.okTh
				h.apply(c)
				h.start()
				// Wait for the runs to be recorded, not just probed: a run
				// still in flight at shutdown is discarded.
				testkit.Eventually(t, 10*time.Second, "the script to be used up", func() bool {
					return h.status("peers").Runs >= uint64(len(tc.script))
				})
				h.stop()
				lines := sl.Drain(t)

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
					l, err := syslogtest.Parse(raw, sl.Local)
					if err != nil {
						t.Fatal(err)
					}
					wantPri, wantSev := 9, otellog.SeverityError3 // user.alert
					if tc.want[i] == "NOTICE" {
						wantPri, wantSev = 13, otellog.SeverityInfo2 // user.notice
					}
					if l.Pri != wantPri || l.Tag != "heartbeat" {
						t.Errorf("line %d: priority %d tag %q, want %d heartbeat: %q", i, l.Pri, l.Tag, wantPri, raw)
					}
					for _, want := range []string{tc.want[i] + " ", "check=peers ", "target=http://user:xxxxx@127.0.0.1:9/heartbeat/1 "} {
						if !strings.Contains(l.Msg, want) {
							t.Errorf("line %d lacks %q: %q", i, want, l.Msg)
						}
					}
					if tc.want[i] == "ALERT" {
						for _, want := range []string{"state=down", `reason="connection refused"`, "error.type=connection_refused"} {
							if !strings.Contains(l.Msg, want) {
								t.Errorf("line %d lacks %q: %q", i, want, l.Msg)
							}
						}
					} else if !strings.Contains(l.Msg, "state=up") {
						t.Errorf("line %d lacks state=up: %q", i, l.Msg)
					}
					m := traceIDRE.FindStringSubmatch(l.Msg)
					if m == nil {
						t.Fatalf("line %d has no trace id: %q", i, l.Msg)
					}
					span, ok := spans[m[1]]
					if !ok {
						t.Fatalf("line %d: no probe span with trace id %s", i, m[1])
					}
					if wantErr := tc.want[i] == "ALERT"; (span.Status().Code == codes.Error) != wantErr {
						t.Errorf("line %d: span status %v, want error %v", i, span.Status(), wantErr)
					}

					rec := recs[i]
					if rec.Body().AsString() != l.Msg {
						t.Errorf("log record %d body %q, want the syslog text %q", i, rec.Body().AsString(), l.Msg)
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
	path := syslogtest.ShortTempDir(t) + "/log.sock" // nothing listens here yet
	h := newHarness(t, func(s *Settings) {
		s.Syslog = syslog.Config{Addr: "unix://" + path, QueueSize: 2, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}
	}, func(context.Context, probe.Target) probe.Result { return fakeRefused })
	var cs []config.Check
	for i := range checks {
		cs = append(cs, schedCheck(string(rune('a'+i)), 10*time.Millisecond))
	}
	h.apply(cs...)
	h.start()

	testkit.Eventually(t, 10*time.Second, "every check to run 5 times", func() bool {
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
	sl := syslogtest.Listen(t, "unixgram", path)
	var got []string
	testkit.Eventually(t, 10*time.Second, "queued alerts to arrive", func() bool {
		for {
			select {
			case l := <-sl.Lines:
				got = append(got, l)
				continue
			default:
			}
			return int64(len(got)) >= checks-dropped
		}
	})
	h.stop()
	got = append(got, sl.Drain(t)...)
	if int64(len(got)) != checks-dropped {
		t.Errorf("got %d alerts after recovery, want %d: %q", len(got), checks-dropped, got)
	}
	for _, raw := range got {
		if l, err := syslogtest.Parse(raw, true); err != nil || l.Pri != 9 {
			t.Errorf("bad alert line %q: %v", raw, err)
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
