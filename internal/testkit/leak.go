package testkit

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"
)

// Resources is what a test could leak in this process.
type Resources struct {
	Goroutines int
	FDs        int
}

// String gives both counts for a failure message.
func (r Resources) String() string {
	return fmt.Sprintf("%d goroutines, %d fds", r.Goroutines, r.FDs)
}

// within reports whether r is at base or below.
func (r Resources) within(base Resources) bool {
	return r.Goroutines <= base.Goroutines && r.FDs <= base.FDs
}

// Snapshot counts goroutines and open descriptors, skipping the test without /proc/self/fd.
func Snapshot(t testing.TB) Resources {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return Resources{Goroutines: runtime.NumGoroutine(), FDs: len(ents)}
}

// WaitBaseline polls until goroutines and descriptors are back to base, failing with a dump otherwise.
func WaitBaseline(t testing.TB, base Resources, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		now := Snapshot(t)
		if now.within(base) {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("leak: %v after %v (baseline %v)\n%s\n%s", now, within, base, listFDs(), goroutineDump())
			return
		}
		time.Sleep(pollInterval) // polling interval, not a stand-in for a signal
	}
}

// CheckLeaks requires goroutines and descriptors to return to their count now when the test ends.
func CheckLeaks(t testing.TB) {
	// The check is a cleanup registered first, so it runs after the test's
	// subtests and every cleanup registered later.
	t.Helper()
	warmUp(t)
	base := Snapshot(t)
	t.Cleanup(func() { WaitBaseline(t, base, 5*time.Second) })
}

// GoroutinesIn counts the goroutines whose stack mentions fn.
func GoroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	c := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			c++
		}
	}
	return c
}

// warmUp opens the process-wide descriptors the runtime creates lazily on
// first network use (the netpoller), so they do not count as leaks.
func warmUp(t testing.TB) {
	t.Helper()
	ln := listen(t)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln.Close()
}

func listFDs() string {
	entries, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		b.WriteString(e.Name() + " -> " + target + "\n")
	}
	return b.String()
}

// goroutineDump is every goroutine's stack, cut short so a failure message
// stays readable.
func goroutineDump() string {
	var dump bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
	d := dump.String()
	if len(d) > 16000 {
		d = d[:16000] + "\n…"
	}
	return d
}
