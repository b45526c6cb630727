package checks

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"time"
)

// The scheduler is one min-heap of due times and one timer: at 10,000 checks
// a goroutine and ticker per check costs several times the memory and the
// lateness, and starting every check at the same instant makes a burst that
// times probes out. So the first run of each check lands at a random point
// of its first interval and every run moves by ±Jitter·Interval around a
// fixed grid (the grid keeps jitter from accumulating into drift).

// schedHeap orders checks by due time; it implements heap.Interface.
type schedHeap []*check

func (h schedHeap) Len() int           { return len(h) }
func (h schedHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h schedHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *schedHeap) Push(x any) {
	c := x.(*check)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *schedHeap) Pop() any {
	old := *h
	n := len(old)
	c := old[n-1]
	old[n-1] = nil
	c.index = -1
	*h = old[:n-1]
	return c
}

// firstDue places a new check's first run uniformly within its first interval.
func firstDue(c *check, now time.Time, rnd *rand.Rand) {
	iv := c.cfg.Interval
	if iv <= 0 {
		iv = time.Second
	}
	c.nominal = now.Add(time.Duration(rnd.Int64N(int64(iv))))
	c.due = jittered(c.nominal, iv, c.cfg.Jitter, now, rnd)
}

// advance moves a check to its next grid point after a run came due at now.
// When the scheduler fell a whole interval behind (a suspended VM, a stalled
// process) missed runs are dropped rather than fired in a burst.
func advance(c *check, now time.Time, rnd *rand.Rand) {
	iv := c.cfg.Interval
	if iv <= 0 {
		iv = time.Second
	}
	c.nominal = c.nominal.Add(iv)
	if !c.nominal.After(now) {
		c.nominal = now.Add(iv)
	}
	c.due = jittered(c.nominal, iv, c.cfg.Jitter, now, rnd)
}

// jittered returns nominal moved by a uniform offset in ±jitter·interval,
// never earlier than now.
func jittered(nominal time.Time, iv time.Duration, jitter float64, now time.Time, rnd *rand.Rand) time.Time {
	due := nominal
	if jitter > 0 {
		j := min(jitter, 0.5) // more would let runs swap order
		span := int64(2 * j * float64(iv))
		if span > 0 {
			due = nominal.Add(time.Duration(rnd.Int64N(span+1) - span/2))
		}
	}
	if due.Before(now) {
		due = now
	}
	return due
}

// schedule puts c on the heap; callers hold r.mu.
func (r *Runner) schedule(c *check, now time.Time) {
	firstDue(c, now, r.rnd)
	heap.Push(&r.heap, c)
}

// unschedule takes c off the heap; callers hold r.mu.
func (r *Runner) unschedule(c *check) {
	if c.index >= 0 && c.index < len(r.heap) && r.heap[c.index] == c {
		heap.Remove(&r.heap, c.index)
	}
}

// wakeUp makes the loop look at the heap again (after Apply changed it).
func (r *Runner) wakeUp() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// loop fires due checks until ctx is done.
func (r *Runner) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		now := time.Now()
		for len(r.heap) > 0 && !r.heap[0].due.After(now) {
			c := r.heap[0]
			due := c.due
			advance(c, now, r.rnd)
			heap.Fix(&r.heap, 0)
			r.dispatch(ctx, c, due)
		}
		wait := time.Duration(-1)
		if len(r.heap) > 0 {
			wait = r.heap[0].due.Sub(now)
		}
		r.mu.Unlock()

		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// dispatch starts a run of c that came due at due, unless the previous run
// is still going; callers hold r.mu and must not block.
func (r *Runner) dispatch(ctx context.Context, c *check, due time.Time) {
	if !c.running.CompareAndSwap(false, true) {
		c.main.mu.Lock()
		c.main.st.Skipped++
		c.main.rememberSkip(due, r.keep)
		opt := c.main.skipOpt()
		c.main.mu.Unlock()
		r.inst.runs.Add(ctx, 1, opt)
		return
	}
	r.inflight.Add(1)
	go func() {
		defer r.inflight.Done()
		defer c.running.Store(false)
		r.execute(ctx, c, due)
	}()
}
