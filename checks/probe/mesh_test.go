package probe

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
)

func TestHTTPMeshHeaders(t *testing.T) {
	var (
		mu  sync.Mutex
		got []http.Header
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
	}))
	defer srv.Close()
	check := newCheck(config.Check{Name: "peers", Type: config.TypeHTTP, Target: "http://peers.mesh.test:1/heartbeat/1", Timeout: 5 * time.Second})
	addr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	if res := runProbe(t, nil, Target{Check: check, Address: addr, MeshFrom: "node-a/10.0.0.4"}); !res.Success {
		t.Fatalf("mesh probe failed: %s", res.Reason)
	}
	plain := newCheck(config.Check{Name: "app", Type: config.TypeHTTP, Target: srv.URL + "/", Timeout: 5 * time.Second})
	if res := runProbe(t, nil, Target{Check: plain}); !res.Success {
		t.Fatalf("plain probe failed: %s", res.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d requests, want 2", len(got))
	}
	if c, f := got[0].Get(mesh.HeaderCheck), got[0].Get(mesh.HeaderFrom); c != "peers" || f != "node-a/10.0.0.4" {
		t.Errorf("mesh probe headers %s=%q %s=%q, want peers and node-a/10.0.0.4", mesh.HeaderCheck, c, mesh.HeaderFrom, f)
	}
	if got[1].Get(mesh.HeaderCheck) != "" || got[1].Get(mesh.HeaderFrom) != "" {
		t.Errorf("a plain probe carries mesh headers: %v", got[1])
	}
}
