package checks

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// RunOnce runs every check of f once, writes one line per check to w and reports whether all passed.
func RunOnce(ctx context.Context, f *config.File, w io.Writer, s Settings) (allPassed bool) {
	// At most Settings.MaxConcurrent at a time, no syslog alerts, lines in
	// file order reading like GoHeartbeat's, with the check's name (unless
	// it is just the target) and the duration:
	//
	//	peers http://10.0.0.5:8080/heartbeat/1: 200 OK (1.2ms)
	//	ssh 127.0.0.1:22: FAILED: connection refused (0.3ms)
	s.Syslog = SyslogConfig{Addr: "none"}
	r, err := New(s)
	if err != nil {
		fmt.Fprintf(w, "heartbeat: %v\n", err)
		return false
	}
	return r.runOnce(ctx, f, w)
}

func (r *Runner) runOnce(ctx context.Context, f *config.File, w io.Writer) bool {
	r.quiet = true
	if err := r.Apply(f); err != nil {
		fmt.Fprintf(w, "heartbeat: %v\n", err)
		return false
	}
	list := r.snapshot()
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.execute(ctx, c, time.Now())
		}()
	}
	wg.Wait()

	allPassed := true
	for _, c := range list {
		for i, s := range c.allSeries() {
			if i == 0 && (c.cfg.EachAddress || c.isMesh()) && len(c.allSeries()) > 1 && s.status().LastSuccess {
				continue // the resolution worked; the addresses tell the rest
			}
			st := s.status()
			if s == c.sweep && st.Runs == 0 {
				continue // a mesh too small to have sweep peers
			}
			if st.Runs == 0 {
				// Cancelled before it could start.
				allPassed = false
				fmt.Fprintf(w, "%s%s: FAILED: not run: %v\n", namePrefix(c), c.display, ctx.Err())
				continue
			}
			if !st.LastSuccess {
				allPassed = false
			}
			fmt.Fprintf(w, "%s%s (%s)\n", namePrefix(c), runLine(s, st), fmtDuration(time.Duration(st.LastDuration)))
		}
	}
	return allPassed
}

// namePrefix is "name " unless the name is the target itself, as it is for
// checks from a GoHeartbeat file, whose lines then read exactly as GoHeartbeat's.
func namePrefix(c *check) string {
	if c.cfg.Name == c.cfg.Target || c.cfg.Name == c.display {
		return ""
	}
	return c.cfg.Name + " "
}

// fmtDuration rounds to three significant figures: 12.3ms, 1.25s.
func fmtDuration(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	default:
		return d.Round(time.Microsecond).String()
	}
}
