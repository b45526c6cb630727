package main

// `heartbeat check` with icmp and mtu checks, run inside the prober
// namespace of a network lab (internal/netlab): the lines it prints carry
// the loss and the path MTU.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/internal/netlab"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

func TestLabCheckPrintsLossAndPathMTU(t *testing.T) {
	netlab.Require(t, "iptables")
	bin := testkit.Heartbeat(t)
	for _, tc := range []struct {
		name      string
		path      netlab.PathConfig
		blackHole bool
		want      []string
		exit      int
	}{{
		name: "frag-needed",
		path: netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400},
		want: []string{
			`^ping 10\.201\.2\.2: 5/5 replies, 0\.0% loss, rtt min/avg/max/stddev \S+ \(`,
			`^pmtu 10\.201\.2\.2: path MTU 1400 bytes \(fragmentation needed from 10\.201\.1\.2, next-hop MTU 1400\) \(`,
			`^pmtu-http http://10\.201\.2\.2:\d+: largest whole response 65536 bytes \(every size passed\) \(`,
		},
	}, {
		// The narrow hop drops "fragmentation needed" and the target's
		// end of the link says 1500, as overlays do.
		name:      "black hole",
		path:      netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400, TargetMTU: 1500},
		blackHole: true,
		exit:      1,
		want: []string{
			`^ping 10\.201\.2\.2: 5/5 replies, 0\.0% loss`,
			`^pmtu 10\.201\.2\.2: FAILED: black hole: packets above 1400 bytes vanish without "fragmentation needed" \(`,
			`^pmtu-http http://10\.201\.2\.2:\d+: FAILED: black hole: a \d+-byte response stalled after \d+ bytes; the largest whole response was \d+ bytes \(`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := netlab.NewPath(t, tc.path, "iptables")
			if tc.blackHole {
				p.Router.IPTables("-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP")
			}
			server := p.Target.ServeHeartbeat(bin, p.TargetV4)
			cfg := filepath.Join(t.TempDir(), "checks.yaml")
			writeFile(t, cfg, fmt.Sprintf(`checks:
  - name: ping
    type: icmp
    target: %[1]s
    icmp: {count: 5, spacing: 10ms}
  - name: pmtu
    type: mtu
    target: %[1]s
    timeout: 20s
    mtu: {tries: 2, wait: 200ms}
  - name: pmtu-http
    type: mtu
    target: http://%[2]s
    timeout: 20s
    mtu: {mode: http, fetch_timeout: 1s}
`, p.TargetV4, server))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := p.Prober.Command(ctx, nil, bin, "check", "--config", cfg)
			cmd.Env = []string{"OTEL_SDK_DISABLED=true"}
			out, err := cmd.Output()
			t.Logf("heartbeat check:\n%s", out)
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.exit {
				t.Errorf("exit %d, want %d", code, tc.exit)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			for _, w := range tc.want {
				re := regexp.MustCompile(w)
				if !slices.ContainsFunc(lines, re.MatchString) {
					t.Errorf("no line matches %s", w)
				}
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
