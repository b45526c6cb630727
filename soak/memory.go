package soak

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrNoMemStats is returned when a text heap profile has no runtime.MemStats trailer.
var ErrNoMemStats = errors.New("no runtime.MemStats in the heap profile")

// MemStats is the part of the server's runtime.MemStats the soak reports, from its heap profile.
type MemStats struct {
	HeapAlloc    uint64 // bytes of live (after a forced GC) heap objects
	HeapInuse    uint64 // bytes in in-use heap spans
	HeapIdle     uint64 // bytes in idle heap spans, released or not
	HeapReleased uint64 // bytes of idle heap returned to the OS
	StackInuse   uint64 // bytes of goroutine stacks
	Sys          uint64 // bytes obtained from the OS in all
	NumGC        uint64
	NumForcedGC  uint64
}

// HeapRetainedFree is the idle heap still resident: RSS the scavenger may yet return to the OS.
func (m MemStats) HeapRetainedFree() uint64 { return m.HeapIdle - m.HeapReleased }

// ReadMemStats reads the server's MemStats, after a full GC when gc is set (HeapAlloc is then live).
func ReadMemStats(ctx context.Context, c *http.Client, admin string, gc bool) (MemStats, error) {
	url := "http://" + admin + "/debug/pprof/heap?debug=1"
	if gc {
		url += "&gc=1"
	}
	body, err := get(ctx, c, url)
	if err != nil {
		return MemStats{}, fmt.Errorf("heap profile: %w", err)
	}
	defer body.Close()
	m, err := parseMemStats(body)
	if err != nil {
		return MemStats{}, fmt.Errorf("heap profile: %w", err)
	}
	return m, nil
}

// parseMemStats reads the "# Name = N" lines runtime/pprof writes after a
// text heap profile.
func parseMemStats(r io.Reader) (MemStats, error) {
	var m MemStats
	fields := map[string]*uint64{
		"HeapAlloc": &m.HeapAlloc, "HeapInuse": &m.HeapInuse, "HeapIdle": &m.HeapIdle,
		"HeapReleased": &m.HeapReleased, "StackInuse": &m.StackInuse, "Sys": &m.Sys,
		"NumGC": &m.NumGC, "NumForcedGC": &m.NumForcedGC,
	}
	seen := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "# "), " = ")
		if !ok {
			continue
		}
		if name == "Stack" { // "# Stack = inuse / sys"
			val, _, _ = strings.Cut(val, " / ")
			name = "StackInuse"
		}
		p, ok := fields[name]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return MemStats{}, fmt.Errorf("MemStats %s = %q: %w", name, val, err)
		}
		*p = n
		seen++
	}
	if err := sc.Err(); err != nil {
		return MemStats{}, err
	}
	if seen < len(fields) {
		return MemStats{}, fmt.Errorf("%w (%d of %d figures)", ErrNoMemStats, seen, len(fields))
	}
	if m.HeapReleased > m.HeapIdle {
		return MemStats{}, fmt.Errorf("MemStats HeapReleased %d > HeapIdle %d", m.HeapReleased, m.HeapIdle)
	}
	return m, nil
}

// SaveHeapProfile writes the server's heap profile after a forced GC to path, for `go tool pprof`.
func SaveHeapProfile(ctx context.Context, c *http.Client, admin, path string) error {
	body, err := get(ctx, c, "http://"+admin+"/debug/pprof/heap?gc=1")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return fmt.Errorf("heap profile to %s: %w", path, err)
	}
	return f.Close()
}

func get(ctx context.Context, c *http.Client, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// FloorConfig says how to read the floor of a figure that transient bursts push up.
type FloorConfig struct {
	Interval  time.Duration // between readings
	Window    time.Duration // least time to read for
	Tolerance float64       // largest gap between the floor and the reading that confirms it, as a fraction of the floor
	Bound     time.Duration // give up after this long
}

// Validate reports a config that could never end or never agree.
func (c FloorConfig) Validate() error {
	if c.Interval <= 0 || c.Window < c.Interval || c.Bound < c.Window || c.Tolerance < 0 {
		return fmt.Errorf("floor: interval %v, window %v, bound %v, tolerance %v: want 0 < interval ≤ window ≤ bound and tolerance ≥ 0",
			c.Interval, c.Window, c.Bound, c.Tolerance)
	}
	return nil
}

// Floor is the outcome of ReadFloor.
type Floor struct {
	Value    int64   // the floor; the smallest reading when !OK
	OK       bool    // two readings agree on the floor; false: Bound passed first
	Readings []int64 // every reading, in order
}

// ReadFloor reads a figure every Interval for at least Window, until two readings agree on a floor or Bound passes.
func ReadFloor(ctx context.Context, cfg FloorConfig, read func() (int64, error)) (Floor, error) {
	// The floor is the smallest reading with a second one within Tolerance
	// above it: a burst in flight at one reading does not decide it, and
	// neither does one reading alone.
	var f Floor
	if err := cfg.Validate(); err != nil {
		return f, err
	}
	start := time.Now()
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		v, err := read()
		if err != nil {
			return f, err
		}
		f.Readings = append(f.Readings, v)
		f.Value, f.OK = floorOf(f.Readings, cfg.Tolerance)
		elapsed := time.Since(start)
		if (f.OK && elapsed >= cfg.Window) || elapsed+cfg.Interval > cfg.Bound {
			return f, nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return f, ctx.Err()
		}
	}
}

// floorOf is the smallest reading with another within tol above it, or the
// smallest of all and false.
func floorOf(readings []int64, tol float64) (int64, bool) {
	s := slices.Clone(readings)
	slices.Sort(s)
	for i := 0; i+1 < len(s); i++ {
		if float64(s[i+1]-s[i]) <= tol*float64(s[i]) {
			return s[i], true
		}
	}
	return s[0], false
}
