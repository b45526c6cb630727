package testkit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Heartbeat returns a heartbeat binary any user may run: $HEARTBEAT_BIN, or one built for the test.
func Heartbeat(t testing.TB) string {
	t.Helper()
	// make test builds bin/heartbeat first and names it; otherwise build
	// one into a world-readable temporary directory removed with the test.
	if bin := os.Getenv("HEARTBEAT_BIN"); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	dir, err := os.MkdirTemp("", "heartbeat-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// MkdirTemp makes it 0700; a test that drops privileges must enter it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "heartbeat")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/heartbeat-sidecar/heartbeat").CombinedOutput()
	if err != nil {
		t.Fatalf("building heartbeat: %v\n%s", err, out)
	}
	return bin
}
