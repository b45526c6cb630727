package checks

import (
	"context"
	"math"
	"testing"
	"time"
	"unsafe"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// TestRunRecordSize pins the per-run cost README states.
func TestRunRecordSize(t *testing.T) {
	if got := unsafe.Sizeof(runRecord{}); got != 16 {
		t.Errorf("runRecord is %d bytes, want 16: README's history cost is computed from it", got)
	}
}

// detailAt returns the details of the i-th held record, oldest first.
func detailAt(h *history, i int) *runDetail {
	for _, st := range h.details {
		if i < st.n {
			return st.d
		}
		i -= st.n
	}
	return nil
}

// TestHistoryDetailsFollowTheRing: as old records drop out, their
// stretches shrink and go, so the details kept cover exactly the runs held
// and the Runs report each run's own.
func TestHistoryDetailsFollowTheRing(t *testing.T) {
	var h history
	a, b := &runDetail{reason: "a"}, &runDetail{reason: "b"}
	pattern := []*runDetail{a, a, nil, b, b, b, nil, a}
	for i, d := range pattern {
		h.add(runRecord{start: int64(i), outcome: OutcomeFailure}, d, 4)
		sum := 0
		for _, st := range h.details {
			if st.n <= 0 {
				t.Fatalf("after run %d: empty stretch in %+v", i, h.details)
			}
			sum += st.n
		}
		if sum != h.n {
			t.Fatalf("after run %d: stretches cover %d runs, %d held", i, sum, h.n)
		}
		runs := h.runs(h.n)
		for j, r := range runs {
			want := ""
			if d := pattern[i-len(runs)+1+j]; d != nil {
				want = d.reason
			}
			if r.Reason != want || r.Start.UnixNano() != int64(i-len(runs)+1+j) {
				t.Errorf("after run %d, held run %d: start %d reason %q, want %d %q", i, j, r.Start.UnixNano(), r.Reason, i-len(runs)+1+j, want)
			}
		}
	}
	if len(h.details) != 3 { // b, nil, a
		t.Errorf("%d stretches held for b nil a: %+v", len(h.details), h.details)
	}
}

func TestRecordDuration(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want uint32
	}{{1500 * time.Nanosecond, 1}, {-time.Second, 0}, {3 * time.Second, 3_000_000}, {100 * time.Hour, math.MaxUint32}} {
		if got := recordDuration(c.in); got != c.want {
			t.Errorf("recordDuration(%s) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestHistoryRing(t *testing.T) {
	var h history
	if h.runs(10) != nil || h.uptime() != nil {
		t.Fatal("empty history reports runs")
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 7 {
		r := runRecord{start: t0.Add(time.Duration(i) * time.Second).UnixNano(), dur: recordDuration(time.Duration(i+1) * time.Millisecond)}
		var d *runDetail
		if i%3 == 2 {
			r.outcome = OutcomeFailure
			d = &runDetail{errType: probe.ErrTimeout, reason: "timed out"}
		}
		h.add(r, d, 5)
	}
	h.add(runRecord{start: t0.Add(7 * time.Second).UnixNano(), outcome: OutcomeSkipped}, nil, 5)
	runs := h.runs(100)
	if len(runs) != 5 {
		t.Fatalf("%d runs held, want 5", len(runs))
	}
	// Held: runs 3..6 and the skip, oldest first; 5 failed.
	for i, r := range runs[:4] {
		if want := t0.Add(time.Duration(i+3) * time.Second); !r.Start.Equal(want) {
			t.Errorf("run %d starts %s, want %s", i, r.Start, want)
		}
	}
	if runs[2].Outcome != OutcomeFailure || runs[2].Reason != "timed out" || runs[4].Outcome != OutcomeSkipped {
		t.Errorf("outcomes: %+v", runs)
	}
	if runs[0].Duration != Seconds(4*time.Millisecond) {
		t.Errorf("oldest held run took %s, want 4ms", time.Duration(runs[0].Duration))
	}
	if got := h.runs(2); len(got) != 2 || !got[1].Start.Equal(t0.Add(7*time.Second)) {
		t.Errorf("runs(2) = %+v, want the latest two", got)
	}
	if u := h.uptime(); u == nil || *u != 0.75 {
		t.Errorf("uptime %v, want 3 of 4 runs that ran", u)
	}
}

func TestHistorySharesRepeatedDetails(t *testing.T) {
	var s series
	fail := probe.Result{ErrorType: probe.ErrTimeout, Reason: "timed out", ProtocolVersion: "2"}
	for range 3 {
		s.remember(context.Background(), fail, fail.Reason, 5)
	}
	if d := detailAt(&s.hist, 0); d == nil || d != detailAt(&s.hist, 1) || d != detailAt(&s.hist, 2) {
		t.Error("identical consecutive failures hold separate details")
	}
	s.remember(context.Background(), probe.Result{ErrorType: probe.ErrTimeout, Reason: "other"}, "other", 5)
	if detailAt(&s.hist, 3) == detailAt(&s.hist, 2) {
		t.Error("a different reason shares the previous details")
	}
	s.remember(context.Background(), probe.Result{Success: true}, "", 5)
	if detailAt(&s.hist, 4) != nil {
		t.Error("a plain success holds details")
	}
	runs := s.hist.runs(5)
	if f := runs[0].Figures; len(f) != 1 || f[0] != (probe.Figure{Name: "protocol", Text: "HTTP/2"}) {
		t.Errorf("figures %+v, want the negotiated protocol", f)
	}
}

func TestRunFigures(t *testing.T) {
	res := probe.Result{
		Figures:   []probe.Figure{{Name: "own", Value: 1}},
		PathMTU:   &probe.PathMTUStats{MTU: 1400},
		Echo:      &probe.EchoStats{Sent: 4, Received: 3},
		Transfers: []probe.Transfer{{Direction: "receive", Bytes: 1_000_000, Duration: time.Second}},
	}
	got := runFigures(nil, res)
	want := []probe.Figure{{Name: "own", Value: 1}, {Name: "path_mtu", Value: 1400, Unit: "By"},
		{Name: "loss", Value: 0.25, Unit: "1"}, {Name: "receive", Value: 8e6, Unit: "bit/s"}}
	if len(got) != len(want) {
		t.Fatalf("figures %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("figure %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if txt := figureText(got); txt != "own 1 · path_mtu 1400 B · loss 25 % · receive 8 Mbit/s" {
		t.Errorf("page text %q", txt)
	}
}

func TestOutcomeText(t *testing.T) {
	for _, o := range []Outcome{OutcomeSuccess, OutcomeFailure, OutcomeSkipped} {
		b, _ := o.MarshalText()
		var back Outcome
		if err := back.UnmarshalText(b); err != nil || back != o {
			t.Errorf("%v round trip: %v %v", o, back, err)
		}
	}
	var o Outcome
	if err := o.UnmarshalText([]byte("maybe")); err == nil {
		t.Error("unknown outcome accepted")
	}
}

// TestRememberAllocs: a passing run adds nothing to the heap, figures or
// phases or not, since records are values, alike runs share their details
// and phases reuse the series' buffer.
func TestRememberAllocs(t *testing.T) {
	var s series
	t0 := time.Now()
	phases := []probe.PhaseTiming{{Name: probe.PhaseConnect, Start: t0, End: t0.Add(time.Millisecond)}}
	for _, res := range []probe.Result{{Success: true, ProtocolVersion: "1.1"}, {Success: true}, {Success: true, Phases: phases}} {
		s.remember(context.Background(), res, "", 60)
		if n := testing.AllocsPerRun(100, func() { s.remember(context.Background(), res, "", 60) }); n != 0 {
			t.Errorf("%+v: %v allocations per run", res, n)
		}
	}
}
