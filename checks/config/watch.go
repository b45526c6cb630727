package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is how long a watched directory must be quiet before the file is read again.
const DefaultDebounce = 100 * time.Millisecond

// Watcher reloads a checks file on Trigger (SIGHUP) and on changes on disk; a bad file keeps the current checks.
type Watcher struct {
	// It watches the file's directory, not the file, so it sees editors'
	// rename-over saves and Kubernetes ConfigMap updates (an atomic swap of
	// the "..data" symlink), which a watch on the file itself would lose.
	// Bursts of events are debounced; a change that leaves the bytes as they
	// were is not applied again. A missing, unreadable or invalid file keeps
	// the current checks: the error goes to Report once per distinct message.
	// A ConfigMap mounted with subPath never changes in the pod; only SIGHUP
	// after a restart-free update of such a file would help, and Kubernetes
	// does not do that.

	// Path is the checks file.
	Path string
	// Current is the configuration already in use, as returned by Load. A
	// change made between that Load and Run is caught: Run compares the
	// file with Current first. nil: whatever the file holds when Run
	// starts counts as applied. Run keeps only Current's digest and sets
	// Current to nil: holding the File would keep every check of the
	// first configuration alive for the process's life, beside the
	// copies the consumer of Apply keeps.
	Current *File
	// Trigger forces a reload that is applied even when the file is
	// unchanged, so secrets read from ${env:...}, ${file:...} and
	// password_file are read again. nil: file changes only.
	Trigger <-chan struct{}
	// Apply receives each new configuration; calls come one at a time from
	// Run's goroutine. Required.
	Apply func(*File)
	// Report receives a reload problem (an *Error for the file, or a
	// watch failure) once per distinct message; after a successful reload
	// the same problem is reported again. Optional.
	Report func(error)
	// Observe, if set, learns the outcome of every reload attempt: nil
	// when the file was applied or is unchanged, the error otherwise (e.g.
	// to count failures in a metric).
	Observe func(error)
	// Debounce is the quiet time after the last event before reading the
	// file; 0 means DefaultDebounce.
	Debounce time.Duration
}

// Watch runs a Watcher for path, taking the file's content at the start as applied, until ctx is done.
func Watch(ctx context.Context, path string, trigger <-chan struct{}, apply func(*File), report func(error)) error {
	// No Current (see Watcher.Current): the content when Watch starts counts
	// as already applied.
	w := &Watcher{Path: path, Trigger: trigger, Apply: apply, Report: report}
	return w.Run(ctx)
}

// Run watches until ctx is done and returns nil; it fails only when Apply is nil.
func (w *Watcher) Run(ctx context.Context) error {
	// If the directory cannot be watched, Run reports that and goes on
	// reloading on Trigger alone.
	if w.Apply == nil {
		return errors.New("config: Watcher.Apply is nil")
	}
	var current [32]byte
	if w.Current != nil {
		current = w.Current.digest
	}
	w.Current = nil
	s := &watchState{w: w, watched: map[string]bool{}}
	debounce := w.Debounce
	if debounce <= 0 {
		debounce = DefaultDebounce
	}
	// A directory that never goes quiet (a log written next to the checks
	// file) must not postpone the reload for ever.
	maxWait := 10 * debounce

	var (
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		s.fail(fmt.Errorf("watch %s: %w; reloading on SIGHUP only", w.Path, err))
	} else {
		defer fsw.Close()
		s.fsw = fsw
		events, errs = fsw.Events, fsw.Errors
		s.watchDirs()
	}

	// The watch is in place; now catch up with anything that changed since
	// Current was loaded.
	if current != ([32]byte{}) {
		s.digest, s.haveDigest = current, true
		s.reload(false)
	} else if data, err := readConfig(w.Path); err == nil {
		s.digest, s.haveDigest = sha256.Sum256(data), true
	} else {
		s.fail(err)
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		fire       <-chan time.Time
		burstStart time.Time
	)
	schedule := func() {
		now := time.Now()
		switch {
		case fire == nil:
			burstStart = now
			timer.Reset(debounce)
			fire = timer.C
		case now.Sub(burstStart) < maxWait:
			timer.Reset(debounce)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Trigger:
			s.reload(true)
			s.watchDirs()
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			schedule()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// Usually an event queue overflow: events were lost, so look.
			s.fail(fmt.Errorf("watch %s: %w", filepath.Dir(w.Path), err))
			schedule()
		case <-fire:
			fire = nil
			s.reload(false)
			s.watchDirs()
		}
	}
}

type watchState struct {
	w          *Watcher
	fsw        *fsnotify.Watcher
	watched    map[string]bool
	digest     [32]byte // of the content last applied
	haveDigest bool
	lastErr    string // message last reported; "" after a success
}

// reload reads and, when changed or forced, parses and applies the file.
func (s *watchState) reload(force bool) {
	data, err := readConfig(s.w.Path)
	if err != nil {
		s.fail(err)
		return
	}
	digest := sha256.Sum256(data)
	if !force && s.haveDigest && digest == s.digest {
		s.succeed()
		return
	}
	f, err := Parse(s.w.Path, data)
	if err != nil {
		s.fail(err)
		return
	}
	s.digest, s.haveDigest = digest, true
	s.w.Apply(f)
	s.succeed()
}

func (s *watchState) succeed() {
	s.lastErr = ""
	if s.w.Observe != nil {
		s.w.Observe(nil)
	}
}

// fail reports err unless it was the last one reported, then tells Observe
// (last, so an Observe call marks the attempt as finished).
func (s *watchState) fail(err error) {
	if msg := err.Error(); msg != s.lastErr {
		s.lastErr = msg
		if s.w.Report != nil {
			s.w.Report(err)
		}
	}
	if s.w.Observe != nil {
		s.w.Observe(err)
	}
}

// watchDirs watches the file's directory and, when the path is a symlink
// into another directory, the directory it resolves to (so edits made
// there are seen too). The resolved directory changes with each
// Kubernetes update; stale ones are dropped.
func (s *watchState) watchDirs() {
	if s.fsw == nil {
		return
	}
	want := map[string]bool{filepath.Clean(filepath.Dir(s.w.Path)): true}
	if real, err := filepath.EvalSymlinks(s.w.Path); err == nil {
		want[filepath.Dir(real)] = true
	}
	for dir := range s.watched {
		if !want[dir] {
			_ = s.fsw.Remove(dir) // may already be gone, with the watch
			delete(s.watched, dir)
		}
	}
	for dir := range want {
		if s.watched[dir] {
			continue
		}
		if err := s.fsw.Add(dir); err != nil {
			if !errors.Is(err, os.ErrNotExist) || dir == filepath.Clean(filepath.Dir(s.w.Path)) {
				s.fail(fmt.Errorf("watch %s: %w; reloading on SIGHUP only", dir, err))
			}
			continue
		}
		s.watched[dir] = true
	}
}
