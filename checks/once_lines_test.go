package checks

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// TestRunOnceLineShape requires every line `heartbeat check` prints, of
// every type, passing or failing, to read "NAME TARGET: RESULT (DURATION)".
func TestRunOnceLineShape(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(fakePayload))
	t.Cleanup(web.Close)
	secure := httptest.NewTLSServer(http.HandlerFunc(fakePayload))
	t.Cleanup(secure.Close)
	open := testkit.AcceptAndClose(t)
	refused := testkit.ClosedAddr(t)
	resolver := startPeerDNS(t, "svc.heartbeat.test", "127.0.0.1")
	grpcSrv := grpc.NewServer()
	grpc_health_v1.RegisterHealthServer(grpcSrv, health.NewServer())
	healthAddr := testkit.ServeGRPC(t, grpcSrv)
	tlsAddr := strings.TrimPrefix(secure.URL, "https://")

	type want struct{ name, target string }
	wants := []want{
		{"web", web.URL + "/heartbeat/4"},
		{"ssh", open},
		{"ssh-down", refused},
		{"cert", tlsAddr},
		{"dns", "svc.heartbeat.test"},
		{"dns-missing", "nope.heartbeat.test"},
		{"grpc", healthAddr},
	}
	yaml := fmt.Sprintf(`checks:
  - {name: web, type: http, target: %q}
  - {name: ssh, type: tcp, target: %q}
  - {name: ssh-down, type: tcp, target: %q}
  - {name: cert, type: tls, target: %q, tls: {insecure_skip_verify: true}}
  - {name: dns, type: dns, target: svc.heartbeat.test, dns: {server: %q}}
  - {name: dns-missing, type: dns, target: nope.heartbeat.test, dns: {server: %q}}
  - {name: grpc, type: grpc, target: %q}
`, wants[0].target, open, refused, tlsAddr, resolver.addr, resolver.addr, healthAddr)
	f, err := config.Parse("checks.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	RunOnce(context.Background(), f, &out, Settings{})
	t.Logf("output:\n%s", out.String())
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(wants) {
		t.Fatalf("%d lines, want %d", len(lines), len(wants))
	}
	for i, w := range wants {
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(w.name+" "+w.target+": ") + `\S.* \([0-9.]+[µm]?s\)$`)
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %q", i, lines[i], re)
		}
	}
	for i, fails := range []bool{false, false, true, false, false, true, false} {
		if got := strings.Contains(lines[i], ": FAILED: "); got != fails {
			t.Errorf("line %d failed=%v, want %v", i, got, fails)
		}
	}
}
