package checks

import (
	"testing"
	"time"
	"unsafe"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// TestRunRecordSize pins the per-run cost README states.
func TestRunRecordSize(t *testing.T) {
	if got := unsafe.Sizeof(runRecord{}); got != 32 {
		t.Errorf("runRecord is %d bytes, want 32: README's history cost is computed from it", got)
	}
}

func TestHistoryRing(t *testing.T) {
	var h history
	if h.runs(10) != nil || h.uptime() != nil {
		t.Fatal("empty history reports runs")
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 7 {
		r := runRecord{start: t0.Add(time.Duration(i) * time.Second).UnixNano(), dur: time.Duration(i+1) * time.Millisecond}
		if i%3 == 2 {
			r.outcome = OutcomeFailure
			r.more = &runDetail{errType: probe.ErrTimeout, reason: "timed out"}
		}
		h.add(r, 5)
	}
	h.add(runRecord{start: t0.Add(7 * time.Second).UnixNano(), outcome: OutcomeSkipped}, 5)
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
	if got := h.runs(2); len(got) != 2 || !got[1].Start.Equal(t0.Add(7*time.Second)) {
		t.Errorf("runs(2) = %+v, want the latest two", got)
	}
	if u := h.uptime(); u == nil || *u != 0.75 {
		t.Errorf("uptime %v, want 3 of 4 runs that ran", u)
	}
}

func TestHistorySharesRepeatedDetails(t *testing.T) {
	var h history
	for range 3 {
		h.add(runRecord{outcome: OutcomeFailure, more: &runDetail{errType: probe.ErrTimeout, reason: "timed out"}}, 4)
	}
	if h.recs[0].more != h.recs[1].more || h.recs[1].more != h.recs[2].more {
		t.Error("identical consecutive failures hold separate details")
	}
	h.add(runRecord{outcome: OutcomeFailure, more: &runDetail{errType: probe.ErrTimeout, reason: "other"}}, 4)
	if h.recs[3].more == h.recs[2].more {
		t.Error("a different reason shares the previous details")
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
