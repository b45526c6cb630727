package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/payload"
)

func defaultOptions() serveOptions {
	return serveOptions{
		listen:          "127.0.0.1:0",
		minSize:         payload.DefaultMinSize,
		maxSize:         payload.DefaultMaxSize,
		maxUpload:       payload.DefaultMaxUpload,
		shutdownTimeout: 10 * time.Second,
		writeTimeout:    payload.DefaultWriteTimeout,
	}
}

// startServe runs serve in the background and returns its address and a
// function that stops it and returns serve's error.
func startServe(t *testing.T, o serveOptions) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	errc := make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { errc <- serve(ctx, o, io.Discard, logger, func(a string) { addrc <- a }) }()
	select {
	case a := <-addrc:
		t.Cleanup(cancel)
		return a, cancel, errc
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start listening")
	}
	return "", nil, nil
}

func TestGracefulDrainOfInFlightResponse(t *testing.T) {
	o := defaultOptions()
	o.maxSize = 64 << 20
	o.drainDelay = 2 * time.Second
	addr, stop, errc := startServe(t, o)

	// A second, idle keep-alive connection lets the test ask /readyz during the drain.
	probe := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	resp, err := probe.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz before shutdown: %d", resp.StatusCode)
	}

	big, err := http.Get("http://" + addr + "/heartbeat/67108864")
	if err != nil {
		t.Fatal(err)
	}
	defer big.Body.Close()
	// Read a little so the response is truly in flight, then stop the server.
	head := make([]byte, 16)
	if _, err := io.ReadFull(big.Body, head); err != nil {
		t.Fatal(err)
	}
	stop()

	// Not ready while draining: poll, since the signal is asynchronous.
	testkit.WaitFor(t, 5*time.Second, "/readyz to report not-ready during the drain", func() (bool, string) {
		resp, err := probe.Get("http://" + addr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable, resp.Status
	})

	rest, err := io.Copy(io.Discard, big.Body)
	if err != nil {
		t.Fatalf("in-flight body cut off after %d bytes: %v", rest+16, err)
	}
	if rest+16 != 64<<20 {
		t.Fatalf("in-flight body: %d bytes, want %d", rest+16, 64<<20)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("serve returned %v, want a clean shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not return after the drain")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("listener still accepting after shutdown")
	}
}

func TestShutdownTimeoutCutsOffSlowClient(t *testing.T) {
	o := defaultOptions()
	o.maxSize = 1 << 30
	o.shutdownTimeout = 200 * time.Millisecond
	addr, stop, errc := startServe(t, o)
	big, err := http.Get("http://" + addr + "/heartbeat/1073741824")
	if err != nil {
		t.Fatal(err)
	}
	defer big.Body.Close()
	stop() // the client never reads, so the drain cannot finish
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
			t.Fatalf("serve returned %v, want a shutdown-timeout error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve ignored the shutdown timeout")
	}
}

func TestTLS(t *testing.T) {
	// httptest's certificate is a real one for 127.0.0.1; reuse it as files.
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	cert := ts.TLS.Certificates[0]
	ts.Close()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writePEM(t, certFile, keyFile, cert)

	o := defaultOptions()
	o.tlsCert, o.tlsKey = certFile, keyFile
	addr, _, _ := startServe(t, o)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}}
	resp, err := c.Get("https://" + addr + "/heartbeat/17")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "0123456789ABCDEF0" || resp.ProtoMajor != 2 {
		t.Errorf("got %s %q", resp.Proto, body)
	}
}

func TestCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      map[string]string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"version", []string{"version"}, nil, 0, version + "\n", ""},
		{"serve -h", []string{"serve", "-h"}, nil, 0, "", "-max-size"},
		{"unknown command", []string{"frobnicate"}, nil, 2, "", `unknown command "frobnicate"`},
		{"bad flag", []string{"serve", "--max-size", "lots"}, nil, 2, "", "invalid value"},
		{"bad env", []string{"serve"}, map[string]string{"HEARTBEAT_MAX_SIZE": "lots"}, 2, "", `HEARTBEAT_MAX_SIZE="lots"`},
		{"bounds", []string{"serve", "--min-size", "10", "--max-size", "5"}, nil, 2, "", "max-size 5 is below min-size 10"},
		{"env bounds", []string{"serve"}, map[string]string{"HEARTBEAT_MIN_SIZE": "10", "HEARTBEAT_MAX_SIZE": "5"}, 2, "", "max-size 5 is below min-size 10"},
		{"tls half", []string{"serve", "--tls-cert", "x"}, nil, 2, "", "--tls-cert and --tls-key go together"},
		{"tls missing files", []string{"serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"}, nil, 2, "", "--tls-cert/--tls-key"},
		{"stray args", []string{"serve", "extra"}, nil, 2, "", "unexpected arguments: extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.wantCode, errb.String())
			}
			if tt.wantOut != "" && out.String() != tt.wantOut {
				t.Errorf("stdout %q, want %q", out.String(), tt.wantOut)
			}
			if tt.wantErr != "" && !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestEnvSetsListenAndCommandLineWins(t *testing.T) {
	t.Setenv("HEARTBEAT_LISTEN", "127.0.0.1:1")
	t.Setenv("HEARTBEAT_LOG", "true")
	fs := newFlagSet("serve", "", io.Discard)
	listen := fs.String("listen", ":8080", "")
	logOn := fs.Bool("log", false, "")
	if _, ok := parse(fs, []string{"--listen", "127.0.0.1:2"}, io.Discard); !ok {
		t.Fatal("parse failed")
	}
	if *listen != "127.0.0.1:2" || !*logOn {
		t.Errorf("listen %q log %v: want the flag to win and the env to set --log", *listen, *logOn)
	}
}

func TestHostName(t *testing.T) {
	t.Setenv("POD_NAME", "web-7d9f")
	if got := hostName(); got != "web-7d9f" {
		t.Errorf("hostName() = %q with POD_NAME set", got)
	}
	t.Setenv("POD_NAME", "")
	want, _ := os.Hostname()
	if got := hostName(); got != want {
		t.Errorf("hostName() = %q, want %q", got, want)
	}
}

func writePEM(t *testing.T, certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	var cb bytes.Buffer
	for _, der := range cert.Certificate {
		_ = pem.Encode(&cb, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	key, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	kb := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key})
	if err := os.WriteFile(certFile, cb.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, kb, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckAndValidateCommands(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer up.Close()
	closedAddr := testkit.ClosedAddr(t)

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.config", `{
  "HeartbeatIntervalSeconds": 30, // GoHeartbeat's own format
  "Urls": ["`+up.URL+`"],
  "TcpEndpoints": ["`+strings.TrimPrefix(up.URL, "http://")+`"],
  "TimeoutSeconds": 2
}`)
	failing := write("failing.yaml", "checks:\n  - {name: down, type: tcp, target: \""+closedAddr+"\", timeout: 1s}\n")
	bad := write("bad.yaml", "checks:\n  - name: x\n    type: http\n    target: http://a/\n    timout: 1s\n")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
		wantErr  string
	}{
		{"validate ok", []string{"validate", "--config", good}, 0, []string{good + ": OK, 2 checks"}, ""},
		{"validate bad", []string{"validate", "--config", bad}, 2, nil, bad + ":5: checks[0].timout: unknown field"},
		{"validate missing", []string{"validate", "--config", filepath.Join(dir, "nope.yaml")}, 2, nil, "nope.yaml"},
		{"check all pass", []string{"check", "--config", good}, 0, []string{up.URL + ": 200 OK", "Connection to " + strings.TrimPrefix(up.URL, "http://") + " successful."}, ""},
		{"check one fails", []string{"check", "--config", failing}, 1, []string{"down " + closedAddr + ": FAILED"}, ""},
		{"check bad config", []string{"check", "--config", bad}, 2, nil, "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errb)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, out.String(), errb.String())
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout %q lacks %q", out.String(), w)
				}
			}
			if !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
		})
	}
}

func TestServeRunsChecksAndReloads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "checks.yaml")
	writeChecks := func(name string) {
		// Written elsewhere and renamed over, as editors and ConfigMaps do.
		tmp := path + ".tmp"
		body := "checks:\n  - {name: " + name + ", type: tcp, target: \"127.0.0.1:1\", interval: 1s, timeout: 500ms}\n"
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	writeChecks("first")
	o := defaultOptions()
	o.config, o.syslogAddr = path, "none"
	addr, _, _ := startServe(t, o)

	waitStatus := func(want string) {
		t.Helper()
		testkit.WaitFor(t, 10*time.Second, "/status to show "+want, func() (bool, string) {
			resp, err := http.Get("http://" + addr + "/status")
			if err != nil {
				return false, err.Error()
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return strings.Contains(string(b), want), string(b)
		})
	}
	waitStatus(`"name": "first"`)
	writeChecks("second")
	waitStatus(`"name": "second"`)

}

// adminAddr captures the admin listener's address from serve's log.
type adminAddr struct {
	slog.Handler
	addr chan string
}

func (h adminAddr) Enabled(context.Context, slog.Level) bool { return true }

func (h adminAddr) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "admin") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				select {
				case h.addr <- a.Value.String():
				default:
				}
			}
			return true
		})
	}
	return nil
}

func TestAdminSurface(t *testing.T) {
	pprofPaths := []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline", "/debug/pprof/heap", "/debug/vars"}
	get := func(t *testing.T, url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}

	t.Run("off by default", func(t *testing.T) {
		addr, _, _ := startServe(t, defaultOptions())
		for _, p := range pprofPaths {
			if code, _ := get(t, "http://"+addr+p); code != http.StatusNotFound {
				t.Errorf("GET %s on the payload port: %d, want 404", p, code)
			}
		}
	})

	t.Run("on a separate localhost port", func(t *testing.T) {
		o := defaultOptions()
		o.adminListen = "127.0.0.1:0"
		ctx, cancel := context.WithCancel(context.Background())
		h := adminAddr{addr: make(chan string, 1)}
		addrc, errc := make(chan string, 1), make(chan error, 1)
		go func() { errc <- serve(ctx, o, io.Discard, slog.New(h), func(a string) { addrc <- a }) }()
		t.Cleanup(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
		var addr, admin string
		for addr == "" || admin == "" {
			select {
			case addr = <-addrc:
			case admin = <-h.addr:
			case err := <-errc:
				t.Fatalf("serve: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not report both listeners")
			}
		}
		if host, _, _ := net.SplitHostPort(admin); host != "127.0.0.1" {
			t.Errorf("admin listener on %s, want 127.0.0.1", admin)
		}
		if admin == addr {
			t.Fatalf("admin and payload share %s", addr)
		}
		for _, p := range pprofPaths {
			if code, _ := get(t, "http://"+addr+p); code != http.StatusNotFound {
				t.Errorf("GET %s on the payload port with admin on: %d, want 404", p, code)
			}
		}
		code, body := get(t, "http://"+admin+"/debug/pprof/goroutine?debug=1")
		if code != http.StatusOK || !strings.HasPrefix(body, "goroutine profile: total ") {
			t.Errorf("admin goroutine profile: %d %.60q", code, body)
		}
		if code, body := get(t, "http://"+admin+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "heap") {
			t.Errorf("admin pprof index: %d %.60q", code, body)
		}
		// The admin port serves pprof only.
		if code, _ := get(t, "http://"+admin+"/heartbeat/17"); code != http.StatusNotFound {
			t.Errorf("GET /heartbeat/17 on the admin port: %d, want 404", code)
		}
	})
}

func TestSelfCheckPassesFromTheFirstRun(t *testing.T) {
	// Mesh deployments list every pod as a check target, the sidecar itself
	// included; its first probe of its own port must not raise an ALERT at
	// every start: checks that began before the payload listener was bound
	// would all fail with "connection refused".
	addr := testkit.ClosedAddr(t) // the file must name the address before the server binds it
	// Each check's first run lands at a random point of its first interval,
	// moved by the jitter and clamped to "now": with many checks, a short
	// interval and the largest jitter, about a quarter run the moment the
	// checks start. The race with the listener is short, so this fails only
	// some of the time while the defect is there; the soak fails reliably.
	const n = 1000
	var yaml strings.Builder
	yaml.WriteString("checks:\n")
	for i := range n {
		fmt.Fprintf(&yaml, "  - {name: self-%d, type: http, target: \"http://%s/healthz\", interval: 1s, timeout: 900ms, jitter: 0.5}\n", i, addr)
	}
	path := t.TempDir() + "/checks.yaml"
	if err := os.WriteFile(path, []byte(yaml.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	o := defaultOptions()
	o.listen, o.config, o.syslogAddr = addr, path, "none"
	startServe(t, o)

	type status struct {
		Checks []struct {
			Name      string `json:"name"`
			Runs      int    `json:"runs"`
			Failures  int    `json:"failures"`
			LastError string `json:"last_error"`
		} `json:"checks"`
	}
	var st status
	testkit.WaitFor(t, 15*time.Second, "every self-check's first run", func() (bool, string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/status", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		st = status{}
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
			return false, err.Error()
		}
		ran := 0
		for _, c := range st.Checks {
			if c.Runs > 0 {
				ran++
			}
		}
		return len(st.Checks) == n && ran == n, fmt.Sprintf("%d of %d checks have run", ran, len(st.Checks))
	})
	failed := 0
	var sample string
	for _, c := range st.Checks {
		if c.Failures > 0 {
			failed++
			sample = c.Name + ": " + c.LastError
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d self-checks failed their first run, e.g. %s", failed, n, sample)
	}
}
