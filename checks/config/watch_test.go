package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// waitFor bounds every wait on the watcher; it is a deadline for a failing
// test, never a delay a passing test sits through.
const waitFor = 10 * time.Second

func yamlWithCheck(name string) string {
	return fmt.Sprintf("checks:\n  - {name: %s, type: tcp, target: \"127.0.0.1:1\"}\n", name)
}

type watchHarness struct {
	t       *testing.T
	path    string
	trigger chan struct{}
	applied chan *File
	reports chan error
	results chan error // every Observe call
	done    chan error
}

// startWatcher runs a Watcher on path (which must hold a valid file) with a
// short debounce and channels in place of the callbacks.
func startWatcher(t *testing.T, path string, withCurrent bool) *watchHarness {
	t.Helper()
	h := &watchHarness{
		t:       t,
		path:    path,
		trigger: make(chan struct{}),
		applied: make(chan *File, 100),
		reports: make(chan error, 100),
		results: make(chan error, 1000),
		done:    make(chan error, 1),
	}
	w := &Watcher{
		Path:     path,
		Trigger:  h.trigger,
		Apply:    func(f *File) { h.applied <- f },
		Report:   func(err error) { h.reports <- err },
		Observe:  func(err error) { h.results <- err },
		Debounce: 20 * time.Millisecond,
	}
	if withCurrent {
		cur, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		w.Current = cur
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { h.done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-h.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return after cancel")
		}
	})
	if withCurrent {
		// Run compares the file with Current once the watch is up; that
		// first result says the watcher is ready.
		h.waitResult()
	}
	return h
}

// waitApplied waits for the configuration whose first check is named want,
// skipping configurations from intermediate states of a write.
func (h *watchHarness) waitApplied(want string) *File {
	h.t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case f := <-h.applied:
			if len(f.Checks) > 0 && f.Checks[0].Name == want {
				return f
			}
		case <-deadline:
			h.t.Fatalf("no configuration with check %q applied", want)
			return nil
		}
	}
}

func (h *watchHarness) waitReport() error {
	h.t.Helper()
	select {
	case err := <-h.reports:
		return err
	case <-time.After(waitFor):
		h.t.Fatal("no error reported")
		return nil
	}
}

func (h *watchHarness) waitResult() error {
	h.t.Helper()
	select {
	case err := <-h.results:
		return err
	case <-time.After(waitFor):
		h.t.Fatal("no reload attempt")
		return nil
	}
}

// drainResults discards the outcomes of reloads already done, so the next
// waitResult sees a reload caused by what the test does next.
func (h *watchHarness) drainResults() {
	for {
		select {
		case <-h.results:
		default:
			return
		}
	}
}

// quiet asserts nothing was applied or reported. Called right after
// waitResult, it checks what that reload did.
func (h *watchHarness) quiet() {
	h.t.Helper()
	select {
	case f := <-h.applied:
		h.t.Errorf("unexpected apply of %d checks", len(f.Checks))
	case err := <-h.reports:
		h.t.Errorf("unexpected report: %v", err)
	default:
	}
}

// writeAtomic replaces path by rename, as editors and kubelet do: readers
// see the old or the new file, never a partial one.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchPlainWrite(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)
	// An in-place write can be read half-done (truncated); that may be
	// reported, but the final content must win.
	if err := os.WriteFile(path, []byte(yamlWithCheck("two")), 0o600); err != nil {
		t.Fatal(err)
	}
	f := h.waitApplied("two")
	if f.Path != path {
		t.Errorf("Path = %q", f.Path)
	}
}

func TestWatchRenameOver(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)
	writeAtomic(t, path, yamlWithCheck("two"))
	h.waitApplied("two")
	writeAtomic(t, path, yamlWithCheck("three"))
	h.waitApplied("three")
}

// TestWatchKubernetesSymlinkSwap updates the file exactly as kubelet updates
// a ConfigMap volume: a new timestamped directory, a "..data_tmp" symlink
// to it renamed over "..data", the old directory removed. checks.yaml is a
// symlink to ..data/checks.yaml and is never touched itself.
func TestWatchKubernetesSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	version := 0
	publish := func(content string) {
		t.Helper()
		version++
		ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", version, 1000+version)
		if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, ts), "checks.yaml", content)
		old, _ := os.Readlink(filepath.Join(dir, "..data"))
		if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
		if old != "" {
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(yamlWithCheck("one"))
	path := filepath.Join(dir, "checks.yaml")
	if err := os.Symlink(filepath.Join("..data", "checks.yaml"), path); err != nil {
		t.Fatal(err)
	}
	h := startWatcher(t, path, true)
	publish(yamlWithCheck("two"))
	h.waitApplied("two")
	// Again: the watch must survive the removal of the directory it
	// resolved to before.
	publish(yamlWithCheck("three"))
	h.waitApplied("three")
}

func TestWatchTrigger(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)
	// SIGHUP applies even unchanged content: secrets may have changed.
	h.trigger <- struct{}{}
	h.waitApplied("one")
}

func TestWatchUnchangedContentNotApplied(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)

	writeAtomic(t, path, yamlWithCheck("one"))
	if err := h.waitResult(); err != nil {
		t.Fatal(err)
	}
	h.quiet()

	// Other files in the directory cause a look, not a reload.
	writeFile(t, dir, "unrelated.txt", "x")
	if err := h.waitResult(); err != nil {
		t.Fatal(err)
	}
	h.quiet()
}

// TestWatchBadFileKeepsOld replaces the file with garbage: the error is
// reported once, nothing is applied, and a fixed file is applied again.
func TestWatchBadFileKeepsOld(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)

	writeAtomic(t, path, "checks: [\n")
	err := h.waitReport()
	if !errors.Is(err, ErrSyntax) || !strings.HasPrefix(err.Error(), path+":1: ") {
		t.Fatalf("report = %v", err)
	}
	h.drainResults()

	// The same garbage again (a touch): attempted, not reported again.
	writeAtomic(t, path, "checks: [\n")
	if err := h.waitResult(); !errors.Is(err, ErrSyntax) {
		t.Fatalf("result = %v", err)
	}
	h.quiet()

	// A different problem is a new report.
	writeAtomic(t, path, "checks:\n  - {name: a}\n")
	if err := h.waitReport(); !errors.Is(err, ErrMissingField) {
		t.Fatalf("report = %v", err)
	}

	writeAtomic(t, path, yamlWithCheck("two"))
	h.waitApplied("two")

	// After a success the first error counts as new again.
	writeAtomic(t, path, "checks: [\n")
	if err := h.waitReport(); !errors.Is(err, ErrSyntax) {
		t.Fatalf("report = %v", err)
	}
}

func TestWatchDeletedFile(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err := h.waitReport()
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrRead) {
		t.Fatalf("report = %v", err)
	}
	h.quiet()

	// Back with the content in use: nothing to apply, the error clears.
	h.drainResults()
	writeAtomic(t, path, yamlWithCheck("one"))
	// A retry of the read that was under way while the file was gone may
	// still report it missing; the reload of the file that is back follows.
	err = h.waitResult()
	for errors.Is(err, fs.ErrNotExist) {
		err = h.waitResult()
	}
	if err != nil {
		t.Fatalf("result = %v", err)
	}
	h.quiet()

	writeAtomic(t, path, yamlWithCheck("two"))
	h.waitApplied("two")
}

func TestWatchUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := writeFile(t, dir, "checks.yaml", yamlWithCheck("one"))
	h := startWatcher(t, path, true)
	// A directory where the file was: unreadable even for root (tests run
	// as root here, so chmod 000 would not do).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	// The removal may be seen first on its own; wait for the directory.
	for {
		err := h.waitReport()
		if !errors.Is(err, ErrRead) {
			t.Fatalf("report = %v", err)
		}
		if strings.Contains(err.Error(), "is a directory") {
			break
		}
	}
}

// TestWatchCatchesUpWithCurrent changes the file between Load and Run.
func TestWatchCatchesUpWithCurrent(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	cur, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAtomic(t, path, yamlWithCheck("two"))
	applied := make(chan *File, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Watcher{Path: path, Current: cur, Apply: func(f *File) { applied <- f }}).Run(ctx)
	}()
	select {
	case f := <-applied:
		if f.Checks[0].Name != "two" {
			t.Errorf("applied %q", f.Checks[0].Name)
		}
	case <-time.After(waitFor):
		t.Error("change before Run was not applied")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestWatchFunc covers the Watch shorthand, where the file's content when
// Watch starts counts as applied.
func TestWatchFunc(t *testing.T) {
	t.Parallel()
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	applied := make(chan *File, 10)
	trigger := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Watch(ctx, path, trigger, func(f *File) { applied <- f }, nil) }()
	// The trigger is read only once Run is in its loop, after the baseline.
	trigger <- struct{}{}
	select {
	case f := <-applied:
		if f.Checks[0].Name != "one" {
			t.Errorf("applied %q", f.Checks[0].Name)
		}
	case <-time.After(waitFor):
		t.Fatal("trigger not applied")
	}
	writeAtomic(t, path, yamlWithCheck("two"))
	deadline := time.After(waitFor)
	for got := ""; got != "two"; {
		select {
		case f := <-applied:
			got = f.Checks[0].Name
		case <-deadline:
			t.Fatal("change not applied")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestWatchMissingDirectory(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "checks.yaml")
	reports := make(chan error, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- (&Watcher{Path: path, Apply: func(*File) {}, Report: func(err error) { reports <- err }}).Run(ctx)
	}()
	select {
	case err := <-reports:
		if !strings.Contains(err.Error(), "reloading on SIGHUP only") {
			t.Errorf("report = %v", err)
		}
	case <-time.After(waitFor):
		t.Error("no report for an unwatchable directory")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if err := (&Watcher{Path: path}).Run(ctx); err == nil {
		t.Error("Run without Apply: no error")
	}
}

// TestWatchLetsCurrentGo: once Run has Current's digest it holds no
// reference to the File, so the first configuration can be collected when
// its consumer has replaced it.
func TestWatchLetsCurrentGo(t *testing.T) {
	path := writeFile(t, t.TempDir(), "checks.yaml", yamlWithCheck("one"))
	cur, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	freed := make(chan struct{})
	runtime.AddCleanup(cur, func(ch chan struct{}) { close(ch) }, freed)
	results := make(chan error, 10)
	w := &Watcher{Path: path, Current: cur, Apply: func(*File) {}, Observe: func(err error) { results <- err }}
	cur = nil
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	select {
	case err := <-results: // Run has compared the file with Current
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitFor):
		t.Fatal("Run never compared the file with Current")
	}
	for range 100 {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Error("the File given as Current is still reachable while Run watches")
}
