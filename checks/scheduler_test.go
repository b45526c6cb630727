package checks

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

func TestFirstDueSpreadsOverInterval(t *testing.T) {
	const n, interval = 10000, 10 * time.Second
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	var buckets [10]int
	for i := range n {
		cfg := schedCheck("c", interval)
		cfg.Jitter = 0.1
		c := &check{cfg: &cfg}
		firstDue(c, now, rnd)
		off := c.due.Sub(now)
		if off < 0 || off > interval+interval/10 {
			t.Fatalf("check %d: first run %v after start, want within the first interval (+jitter)", i, off)
		}
		buckets[min(int(off*10/interval), 9)]++
	}
	// Uniform: each tenth of the interval gets ~1,000 starts (σ≈30); the
	// bounds are wide so this fails only if starts bunch up.
	for i, b := range buckets {
		if b < 800 || b > 1200 {
			t.Errorf("tenth %d of the interval has %d of %d first runs; want 800..1200 (all: %v)", i, b, n, buckets)
		}
	}
}

func TestJitterAroundGrid(t *testing.T) {
	cases := []struct {
		jitter float64
		wantSD float64 // standard deviation of the offset, in intervals
	}{
		{0, 0},
		{0.1, 0.2 / math.Sqrt(12)}, // uniform on ±10 %
		{0.3, 0.6 / math.Sqrt(12)},
	}
	for _, tc := range cases {
		const n, interval = 5000, 10 * time.Second
		rnd := rand.New(rand.NewPCG(3, 4))
		cfg := schedCheck("c", interval)
		cfg.Jitter = tc.jitter
		c := &check{cfg: &cfg}
		now := time.Now()
		firstDue(c, now, rnd)
		var sum, sumSq float64
		for range n {
			advance(c, c.due, rnd)
			off := c.due.Sub(c.nominal)
			if math.Abs(float64(off)) > tc.jitter*float64(interval)+1 {
				t.Fatalf("jitter %v: offset %v beyond ±%v", tc.jitter, off, time.Duration(tc.jitter*float64(interval)))
			}
			x := off.Seconds() / interval.Seconds()
			sum += x
			sumSq += x * x
		}
		mean := sum / n
		sd := math.Sqrt(sumSq/n - mean*mean)
		if math.Abs(mean) > 0.01 || math.Abs(sd-tc.wantSD) > 0.2*tc.wantSD+1e-9 {
			t.Errorf("jitter %v: offsets mean %.4f sd %.4f intervals, want mean 0 sd %.4f", tc.jitter, mean, sd, tc.wantSD)
		}
		// The grid does not drift: after n runs the nominal time is n intervals on.
		if got := c.nominal.Sub(now); got < n*interval || got > (n+1)*interval {
			t.Errorf("jitter %v: grid moved to %v after %d runs, want %v..%v", tc.jitter, got, n, n*interval, (n+1)*interval)
		}
	}
}

func TestAdvanceDropsMissedRuns(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	cfg := schedCheck("c", time.Second)
	c := &check{cfg: &cfg}
	start := time.Now()
	firstDue(c, start, rnd)
	// The process stalled for an hour: the next run is one interval from
	// now, not 3,600 runs in a burst.
	later := start.Add(time.Hour)
	advance(c, later, rnd)
	if d := c.due.Sub(later); d <= 0 || d > time.Second {
		t.Errorf("after a stall the next run is %v away, want within one interval", d)
	}
}

func TestStartsSpreadAcrossFirstInterval(t *testing.T) {
	const n, interval = 100, 400 * time.Millisecond
	var (
		mu     sync.Mutex
		starts = map[string]time.Time{}
	)
	h := newHarness(t, nil, func(context.Context, probe.Target) probe.Result { return fakeOK })
	h.r.onStart = func(c *check, _, started time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if _, ok := starts[c.cfg.Name]; !ok {
			starts[c.cfg.Name] = started
		}
	}
	var cs []config.Check
	for i := range n {
		cs = append(cs, schedCheck("c"+string(rune('A'+i%26))+string(rune('a'+i/26)), interval))
	}
	applied := time.Now()
	h.apply(cs...)
	h.start()
	testkit.Eventually(t, 10*time.Second, "every check to start", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(starts) == n
	})
	// Split the first interval in eighths: each should get ~12 first runs.
	// A scheduler starting everything at once would put all 100 in one.
	var buckets [8]int
	mu.Lock()
	for _, s := range starts {
		buckets[min(int(s.Sub(applied)*8/interval), 7)]++
	}
	mu.Unlock()
	for i, b := range buckets {
		if b > n/2 {
			t.Errorf("%d of %d checks started in eighth %d of the first interval: %v", b, n, i, buckets)
		}
	}
}

func TestNoOverlapCountsSkipped(t *testing.T) {
	release := make(chan struct{})
	var inFlight, maxInFlight, calls atomic.Int64
	h := newHarness(t, nil, func(ctx context.Context, _ probe.Target) probe.Result {
		calls.Add(1)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return fakeOK
	})
	c := schedCheck("slow", 5*time.Millisecond)
	c.Timeout = time.Minute // longer than the interval on purpose
	h.apply(c)
	h.start()
	testkit.Eventually(t, 10*time.Second, "runs to be skipped", func() bool { return h.status("slow").Skipped >= 5 })
	close(release)
	testkit.Eventually(t, 10*time.Second, "a second run", func() bool { return calls.Load() >= 2 })
	h.stop()

	if m := maxInFlight.Load(); m != 1 {
		t.Errorf("check ran %d times at once, want never more than once", m)
	}
	st := h.status("slow")
	skipped := counterSum(h.metrics(), "probe.runs", map[string]string{"check.name": "slow", "outcome": "skipped"})
	if skipped < 5 || uint64(skipped) != st.Skipped {
		t.Errorf("probe.runs{outcome=skipped} = %d, status says %d; want equal and at least 5", skipped, st.Skipped)
	}
}

func TestConcurrencyLimit(t *testing.T) {
	const limit = 3
	var inFlight, maxInFlight, runs atomic.Int64
	h := newHarness(t, func(s *Settings) { s.MaxConcurrent = limit }, func(ctx context.Context, _ probe.Target) probe.Result {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := maxInFlight.Load()
			if n <= m || maxInFlight.CompareAndSwap(m, n) {
				break
			}
		}
		// A slow target: 20 checks × 5 ms per 20 ms ask for 5 probes at once.
		t := time.NewTimer(5 * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		runs.Add(1)
		return fakeOK
	})
	var cs []config.Check
	for i := range 20 {
		cs = append(cs, schedCheck(string(rune('a'+i)), 20*time.Millisecond))
	}
	h.apply(cs...)
	h.start()
	testkit.Eventually(t, 20*time.Second, "200 runs", func() bool { return runs.Load() >= 200 })
	h.stop()
	if m := maxInFlight.Load(); m != limit {
		t.Errorf("at most %d probes ran at once, want exactly the limit %d", m, limit)
	}
}

func TestApplySwapsChecks(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[name]
	}
	h := newHarness(t, nil, func(_ context.Context, tg probe.Target) probe.Result {
		mu.Lock()
		calls[tg.Check.Name]++
		mu.Unlock()
		return fakeOK
	})
	const iv = 5 * time.Millisecond
	keep, change, drop := schedCheck("keep", iv), schedCheck("change", iv), schedCheck("drop", iv)
	h.apply(keep, change, drop)
	h.start()
	testkit.Eventually(t, 10*time.Second, "every check to run 3 times", func() bool {
		return count("keep") >= 3 && count("change") >= 3 && count("drop") >= 3
	})
	keepBefore := h.r.checks["keep"]
	changeBefore := h.r.checks["change"]

	changed := change
	changed.Timeout = 2 * iv
	added := schedCheck("add", iv)
	h.apply(keep, changed, added)

	if h.r.checks["keep"] != keepBefore {
		t.Error("an unchanged check was replaced; its state should carry over")
	}
	if h.r.checks["change"] == changeBefore || !changeBefore.retired.Load() {
		t.Error("a changed check kept running with its old definition")
	}
	if h.r.checks["change"].cfg.Timeout != 2*iv {
		t.Error("the changed check does not have its new definition")
	}
	if st := h.status("change"); st.Runs > 2 {
		t.Errorf("the changed check restarted with %d runs of history, want a fresh state", st.Runs)
	}
	if _, ok := h.r.checks["drop"]; ok {
		t.Error("a removed check is still there")
	}
	testkit.Eventually(t, 10*time.Second, "the new check to run", func() bool { return count("add") >= 2 })
	dropped := count("drop")
	addNow := count("add")
	testkit.Eventually(t, 10*time.Second, "more runs", func() bool { return count("add") >= addNow+3 })
	if n := count("drop"); n != dropped {
		t.Errorf("the removed check ran %d more times", n-dropped)
	}
	var names []string
	for _, c := range h.r.Status() {
		names = append(names, c.Name)
	}
	if len(names) != 3 || names[0] != "keep" || names[1] != "change" || names[2] != "add" {
		t.Errorf("status lists %v, want [keep change add] in file order", names)
	}
	if got := len(h.r.heap); got != 3 {
		t.Errorf("heap holds %d checks, want 3", got)
	}
}

func TestApplyRejectsUnknownType(t *testing.T) {
	h := newHarness(t, nil, nil) // real probers
	good := schedCheck("good", time.Second)
	h.apply(good)
	bad := schedCheck("bad", time.Second)
	bad.Type = "smtp"
	err := h.r.Apply(&config.File{Checks: []config.Check{bad}})
	if !errors.Is(err, ErrUnknownType) {
		t.Fatalf("Apply with an unknown type: %v, want ErrUnknownType", err)
	}
	if st := h.r.Status(); len(st) != 1 || st[0].Name != "good" {
		t.Errorf("after a rejected Apply the checks are %+v, want the old set", st)
	}
}

func TestApplyRejectsDuplicateNames(t *testing.T) {
	h := newHarness(t, nil, nil)
	c := schedCheck("twin", time.Second)
	if err := h.r.Apply(&config.File{Checks: []config.Check{c, c}}); !errors.Is(err, ErrInvalidSettings) {
		t.Errorf("Apply with a duplicate name: %v, want ErrInvalidSettings", err)
	}
	if len(h.r.Status()) != 0 {
		t.Error("a rejected Apply changed the checks")
	}
}

func TestRunTwice(t *testing.T) {
	h := newHarness(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.r.Run(ctx); err != nil {
		t.Errorf("Run with a cancelled context: %v, want nil", err)
	}
	if err := h.r.Run(ctx); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run: %v, want ErrAlreadyRunning", err)
	}
}

func TestReportReloadError(t *testing.T) {
	h := newHarness(t, nil, nil)
	errA := errors.New("checks.yaml:3: interval: bad duration")
	h.r.ReportReloadError(errA)
	h.r.ReportReloadError(errA)
	h.r.ReportReloadError(errors.New("checks.yaml: no such file"))
	h.r.ReportReloadError(nil) // a good reload re-arms the log
	h.r.ReportReloadError(errA)
	if n := counterSum(h.metrics(), "heartbeat.config.reload.failures", nil); n != 4 {
		t.Errorf("reload failures = %d, want 4", n)
	}
	if n := strings.Count(h.slog.String(), "reload failed"); n != 3 {
		t.Errorf("logged %d reload failures, want 3 (repeats logged once):\n%s", n, h.slog.String())
	}
}

// TestShutdownIsNotAFailure stops the runner while a probe is in flight: the
// cut-short run must not count as a failure nor raise an alert.
func TestShutdownIsNotAFailure(t *testing.T) {
	started := make(chan struct{})
	var once sync.Once
	h := newHarness(t, nil, func(ctx context.Context, _ probe.Target) probe.Result {
		once.Do(func() { close(started) })
		<-ctx.Done()
		return probe.Result{ErrorType: probe.ErrTimeout, Reason: "timed out after 0s"}
	})
	c := schedCheck("slow", 5*time.Millisecond)
	c.Timeout = time.Minute
	h.apply(c)
	h.start()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("probe did not start")
	}
	h.stop()
	if st := h.status("slow"); st.Runs != 0 || st.State != StateUnknown {
		t.Errorf("after shutdown mid-run: %d runs, state %v; want none recorded", st.Runs, st.State)
	}
	if n := counterSum(h.metrics(), "probe.runs", map[string]string{"outcome": "failure"}); n != 0 {
		t.Errorf("probe.runs{outcome=failure} = %d after shutdown, want 0", n)
	}
	if recs := h.logs.records(); len(recs) != 0 {
		t.Errorf("shutdown raised %d alerts", len(recs))
	}
}
