//go:build e2e

// Command stack starts the same pipeline as the e2e test — rsyslog,
// Prometheus, Jaeger and its UI, the collector, Fluent Bit with the log store
// behind it, and sidecars A and B — on free 127.0.0.1 ports, prints their
// URLs and exits, leaving them running. `stack down` (or scripts/stack.sh
// down) stops them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/e2e"
)

func main() {
	e2e.RunHelperIfRequested()
	root := flag.String("root", ".", "repository root (bin/, otel-collector.yaml, collector/)")
	work := flag.String("work", "e2e/work/stack", "directory for configs, data and logs")
	noSidecars := flag.Bool("no-sidecars", false, "start only the pipeline, for sidecars you run yourself")
	flag.Parse()
	pids := filepath.Join(*work, "..", "stack.pids")
	var err error
	switch flag.Arg(0) {
	case "", "up":
		err = up(*root, *work, pids, *noSidecars)
	case "down":
		err = down(pids)
	default:
		err = fmt.Errorf("unknown command %q: want up or down", flag.Arg(0))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func up(root, work, pids string, noSidecars bool) error {
	if _, err := os.Stat(pids); err == nil {
		if err := down(pids); err != nil {
			return fmt.Errorf("stopping the previous stack: %w", err)
		}
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	s, err := e2e.Start(ctx, e2e.Options{Root: root, Work: work, Log: os.Stdout, ScrapeInterval: 5 * time.Second, NoSidecars: noSidecars, Detach: true})
	if err != nil {
		return err
	}
	// down stops them in reverse: sidecars first, while the collector is up.
	var b strings.Builder
	for _, p := range s.Procs() {
		fmt.Fprintf(&b, "%d %s %s\n", p.Pid(), p.Name, p.Path())
	}
	if err := os.WriteFile(pids, []byte(b.String()), 0o644); err != nil {
		s.Stop()
		return err
	}
	fmt.Println()
	for _, u := range s.URLs() {
		fmt.Printf("  %-30s %s\n", u[0], u[1])
	}
	fmt.Printf("\nleft running; stop with: make stack-down (or scripts/stack.sh down)\n")
	return nil
}

// down sends SIGTERM to each recorded process group, newest first, and
// SIGKILL to any still there after 5 s.
func down(pids string) error {
	b, err := os.ReadFile(pids)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var groups []int
	for i := len(lines) - 1; i >= 0; i-- {
		f := strings.Fields(lines[i])
		if len(f) != 3 {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid <= 1 {
			continue
		}
		// Only signal a process that is still the one we started: a pid
		// may have been reused since.
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); argv0 != f[2] {
			continue
		}
		if syscall.Kill(-pid, syscall.SIGTERM) == nil {
			groups = append(groups, pid)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range groups {
		for syscall.Kill(-pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond) // waiting on another process's exit: no channel to wait on
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	return os.Remove(pids)
}
