package checks

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// rootsHelperEnv carries the URL TestRunOnceRootsHelper checks, and makes it run.
const rootsHelperEnv = "HEARTBEAT_TEST_ROOTS_URL"

// TestRunOnceLoadsSystemRootsFirst requires `heartbeat check` to load the
// system roots before any probe's clock starts, so the first https run does
// not count the one-time load. The roots file is a FIFO: the process reading
// it blocks until the test writes, so which comes first, the read of the
// roots or the probe's connection to the server, is observed, not timed.
func TestRunOnceLoadsSystemRootsFirst(t *testing.T) {
	accepted := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			select {
			case accepted <- struct{}{}:
			default:
			}
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	fifo := filepath.Join(dir, "roots.pem")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunOnceRootsHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), rootsHelperEnv+"="+srv.URL, "SSL_CERT_FILE="+fifo, "SSL_CERT_DIR="+t.TempDir())
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	// output stops the helper, so its output is read only once it has exited.
	output := func() string {
		_ = cmd.Process.Kill()
		<-exited
		return out.String()
	}
	t.Cleanup(func() { output() })

	// Opening a FIFO for writing waits for its reader.
	opened := make(chan *os.File, 1)
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- f
	}()
	t.Cleanup(func() {
		// Releases the opener if the helper never read the roots.
		if r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			if f := <-opened; f != nil {
				f.Close()
			}
			r.Close()
		}
	})

	var w *os.File
	select {
	case <-accepted:
		t.Error("the probe connected to the server before the system roots were read")
	case w = <-opened:
	case <-exited:
		t.Fatalf("helper exited before reading the roots: %v\n%s", waitErr, out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("helper neither read the roots nor connected within 30s\n%s", output())
	}
	if w == nil {
		select {
		case w = <-opened:
		case <-time.After(30 * time.Second):
			t.Fatalf("helper never read the roots\n%s", output())
		}
	}
	opened <- nil // nothing left for the cleanup to close
	if w == nil {
		t.FailNow()
	}
	_, err := w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}))
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil || !strings.Contains(out.String(), srv.URL+": 200 OK") {
			t.Fatalf("check against the server trusted by the roots file: %v\n%s", waitErr, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("helper did not finish within 30s\n%s", output())
	}
}

// TestRunOnceRootsHelper is the process TestRunOnceLoadsSystemRootsFirst
// starts: `heartbeat check` of one https check verified by the system roots.
func TestRunOnceRootsHelper(t *testing.T) {
	url := os.Getenv(rootsHelperEnv)
	if url == "" {
		t.Skip("run by TestRunOnceLoadsSystemRootsFirst")
	}
	c := config.Check{Name: url, Type: config.TypeHTTP, Target: url, Timeout: 20 * time.Second}
	c.ApplyDefaults()
	if !RunOnce(context.Background(), &config.File{Checks: []config.Check{c}}, os.Stdout, Settings{}) {
		t.Fatal("check failed")
	}
}
