package checks

import (
	"context"
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
	var s series
	fail := probe.Result{ErrorType: probe.ErrTimeout, Reason: "timed out", ProtocolVersion: "2"}
	for range 3 {
		s.remember(context.Background(), fail, fail.Reason, 5)
	}
	if s.hist.recs[0].more != s.hist.recs[1].more || s.hist.recs[1].more != s.hist.recs[2].more {
		t.Error("identical consecutive failures hold separate details")
	}
	s.remember(context.Background(), probe.Result{ErrorType: probe.ErrTimeout, Reason: "other"}, "other", 5)
	if s.hist.recs[3].more == s.hist.recs[2].more {
		t.Error("a different reason shares the previous details")
	}
	s.remember(context.Background(), probe.Result{Success: true}, "", 5)
	if s.hist.recs[4].more != nil {
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
// not, since records are values and alike runs share their details.
func TestRememberAllocs(t *testing.T) {
	var s series
	for _, res := range []probe.Result{{Success: true, ProtocolVersion: "1.1"}, {Success: true}} {
		s.remember(context.Background(), res, "", 60)
		if n := testing.AllocsPerRun(100, func() { s.remember(context.Background(), res, "", 60) }); n != 0 {
			t.Errorf("%+v: %v allocations per run", res, n)
		}
	}
}
