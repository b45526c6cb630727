package payload

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// testConfig is the payload configuration serve uses by default.
func testConfig() Config {
	return Config{MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, MaxUpload: DefaultMaxUpload, WriteTimeout: DefaultWriteTimeout, Version: "test", Host: "storm"}
}

// startHTTPServer serves a ready payload handler built from cfg through
// NewHTTPServer, the production policy, on a loopback port; mod, if set,
// adjusts the server before it starts. The server and handler are shut down
// when the test ends.
func startHTTPServer(t *testing.T, cfg Config, mod func(*http.Server)) string {
	t.Helper()
	ps, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ps.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ps.SetReady(true)
	srv := NewHTTPServer(ps, nil, testkit.DiscardLogger())
	if mod != nil {
		mod(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestHTTPServerLimits(t *testing.T) {
	srv := NewHTTPServer(http.NotFoundHandler(), nil, testkit.DiscardLogger())
	// Each limit below is what cuts off one kind of hostile client.
	if d := srv.ReadHeaderTimeout; d <= 0 || d > 10*time.Second {
		t.Errorf("ReadHeaderTimeout %v: slowloris and idle connections need a cut-off of at most 10s", d)
	}
	if d := srv.IdleTimeout; d <= 0 || d > 5*time.Minute {
		t.Errorf("IdleTimeout %v: idle keep-alive connections need a cut-off", d)
	}
	if n := srv.MaxHeaderBytes; n <= 0 || n > 64<<10 {
		t.Errorf("MaxHeaderBytes %d: want a bound of at most 64 KiB", n)
	}
	// The payload handler sets a per-chunk deadline instead.
	if srv.WriteTimeout != 0 {
		t.Errorf("WriteTimeout %v: large bodies rely on the per-chunk write deadline", srv.WriteTimeout)
	}
}

func TestH2CAndHTTP1OnOnePort(t *testing.T) {
	addr := startHTTPServer(t, testConfig(), nil)
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	for name, c := range map[string]*http.Client{"HTTP/1.1": http.DefaultClient, "HTTP/2.0": h2c} {
		resp, err := c.Get("http://" + addr + "/heartbeat/17")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != name || string(body) != "0123456789ABCDEF0" {
			t.Errorf("%s: got proto %s body %q", name, resp.Proto, body)
		}
	}
}

func TestAdminHandlerServesPprofOnly(t *testing.T) {
	srv := &http.Server{Handler: AdminHandler(), ReadHeaderTimeout: time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	base := "http://" + ln.Addr().String()
	for _, tc := range []struct {
		path, want string
		code       int
	}{
		{"/debug/pprof/", "heap", http.StatusOK},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile: total ", http.StatusOK},
		{"/heartbeat/17", "", http.StatusNotFound},
		{"/debug/vars", "", http.StatusNotFound},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d %.60q, want %d containing %q", tc.path, resp.StatusCode, body, tc.code, tc.want)
		}
	}
}
