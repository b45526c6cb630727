package checks

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

func TestRunOnce(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(fakePayload))
	t.Cleanup(srv.Close)
	open := testkit.AcceptAndClose(t)
	refused := testkit.ClosedAddr(t)
	url := srv.URL + "/heartbeat/16"

	cases := []struct {
		name     string
		file     string // "legacy" JSON or YAML
		wantPass bool
		want     []string // one regexp per output line, in file order
	}{
		{
			name: "GoHeartbeat file, all up",
			file: fmt.Sprintf(`{"HeartbeatIntervalSeconds": 30, // seconds between heartbeats
				"Urls": [%q], "TcpEndpoints": [%q], "TimeoutSeconds": 2}`, url, open),
			wantPass: true,
			want: []string{
				`^` + regexp.QuoteMeta(url+": 200 OK over HTTP/1.1") + ` \([0-9.]+[µm]?s\)$`,
				`^` + regexp.QuoteMeta(open+": Connection to "+open+" successful.") + ` \([0-9.]+[µm]?s\)$`,
			},
		},
		{
			name:     "GoHeartbeat file, one down",
			file:     fmt.Sprintf(`{"HeartbeatIntervalSeconds": 30, "Urls": [], "TcpEndpoints": [%q, %q], "TimeoutSeconds": 2}`, open, refused),
			wantPass: false,
			want: []string{
				`^` + regexp.QuoteMeta(open+": Connection to "+open+" successful. "),
				`^` + regexp.QuoteMeta(refused) + `: FAILED: .*connection refused.* \([0-9.]+[µm]?s\)$`,
			},
		},
		{
			name: "yaml with names",
			file: fmt.Sprintf(`checks:
  - {name: peers, type: http, target: %q}
  - {name: ssh, type: tcp, target: %q}
`, strings.Replace(url, "http://", "http://u:hunter2@", 1), refused),
			wantPass: false,
			want: []string{
				`^peers ` + regexp.QuoteMeta(strings.Replace(url, "http://", "http://u:xxxxx@", 1)+": 200 OK over HTTP/1.1") + ` \(`,
				`^ssh ` + regexp.QuoteMeta(refused) + `: FAILED: .*connection refused`,
			},
		},
		{
			name:     "empty lists pass",
			file:     `{"HeartbeatIntervalSeconds": 30, "Urls": [], "TcpEndpoints": []}`,
			wantPass: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse("checks.conf", []byte(tc.file))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var out bytes.Buffer
			pass := RunOnce(context.Background(), f, &out, Settings{})
			if pass != tc.wantPass {
				t.Errorf("RunOnce = %v, want %v:\n%s", pass, tc.wantPass, out.String())
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(tc.want), out.String())
			}
			for i, re := range tc.want {
				if !regexp.MustCompile(re).MatchString(lines[i]) {
					t.Errorf("line %d = %q, want match for %s", i, lines[i], re)
				}
			}
			t.Logf("output:\n%s", out.String())
			if strings.Contains(out.String(), "hunter2") {
				t.Errorf("output leaks a password:\n%s", out.String())
			}
		})
	}
}

func TestRunOnceEachAddress(t *testing.T) {
	open := testkit.AcceptAndClose(t)
	_, port, _ := net.SplitHostPort(open)
	d := startPeerDNS(t, "peers.heartbeat.test", "127.0.0.1", "127.0.0.2")
	h := newHarness(t, nil, nil)
	h.r.resolver = d.resolver()
	c := schedCheck("peers", time.Minute)
	c.Target, c.Timeout, c.EachAddress, c.MaxAddresses = "peers.heartbeat.test:"+port, 2*time.Second, true, 10
	c.ApplyDefaults()
	var out bytes.Buffer
	if h.r.runOnce(context.Background(), &config.File{Checks: []config.Check{c}}, &out) {
		t.Errorf("runOnce passed with one address refusing:\n%s", out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "peers peers.heartbeat.test:"+port+" [127.0.0.1:"+port+"]: Connection to 127.0.0.1:"+port+" successful. (") ||
		!strings.HasPrefix(lines[1], "peers peers.heartbeat.test:"+port+" [127.0.0.2:"+port+"]: FAILED: ") {
		t.Errorf("each_address lines:\n%s", out.String())
	}
	if h.logs.records() != nil {
		t.Errorf("runOnce emitted alerts: %d log records", len(h.logs.records()))
	}
}

func TestRunOnceCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := schedCheck("x", time.Minute)
	c.ApplyDefaults()
	var out bytes.Buffer
	if RunOnce(ctx, &config.File{Checks: []config.Check{c}}, &out, Settings{}) {
		t.Errorf("RunOnce passed with a cancelled context:\n%s", out.String())
	}
	if !strings.HasPrefix(out.String(), "x 127.0.0.1:9: FAILED: ") {
		t.Errorf("no FAILED line for the check that did not run:\n%s", out.String())
	}
}

func TestRunOnceBadSettings(t *testing.T) {
	var out bytes.Buffer
	if RunOnce(context.Background(), &config.File{}, &out, Settings{MaxConcurrent: -1}) {
		t.Error("RunOnce passed with invalid settings")
	}
	if !strings.Contains(out.String(), "max concurrent") {
		t.Errorf("output %q does not explain the error", out.String())
	}
}

func TestFmtDuration(t *testing.T) {
	cases := map[time.Duration]string{
		12345 * time.Microsecond:  "12.3ms",
		1234567 * time.Nanosecond: "1.23ms",
		250 * time.Microsecond:    "250µs",
		1234 * time.Millisecond:   "1.23s",
		12345 * time.Millisecond:  "12.3s",
		150 * time.Millisecond:    "150ms",
	}
	for d, want := range cases {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
