package checks

import (
	"testing"
	"time"
)

func TestSeriesStatusThresholds(t *testing.T) {
	const F, S = false, true
	cases := []struct {
		name         string
		failTh, okTh int
		runs         []bool
		want         []transition
		final        State
	}{
		{"unknown to up is silent", 1, 1, []bool{S}, []transition{noTransition}, StateUp},
		{"first failure alerts", 1, 1, []bool{F}, []transition{wentDown}, StateDown},
		{"failures below threshold stay unknown", 3, 1, []bool{F, F}, []transition{noTransition, noTransition}, StateUnknown},
		{"threshold reached from unknown", 3, 1, []bool{F, F, F, F}, []transition{noTransition, noTransition, wentDown, noTransition}, StateDown},
		{"success resets the failure count", 2, 1, []bool{S, F, S, F, S}, []transition{0, 0, 0, 0, 0}, StateUp},
		{"recovery needs okTh successes", 1, 3, []bool{F, S, S, F, S, S, S, S},
			[]transition{wentDown, 0, 0, 0, 0, 0, wentUp, 0}, StateUp},
		{"zero thresholds count as one", 0, 0, []bool{F, S}, []transition{wentDown, wentUp}, StateUp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var st SeriesStatus
			now := time.Now()
			for i, ok := range tc.runs {
				if got := st.apply(ok, tc.failTh, tc.okTh, now); got != tc.want[i] {
					t.Errorf("run %d (ok=%v): transition %v, want %v", i, ok, got, tc.want[i])
				}
			}
			if st.State != tc.final {
				t.Errorf("final state %v, want %v", st.State, tc.final)
			}
			if st.Runs != uint64(len(tc.runs)) {
				t.Errorf("runs %d, want %d", st.Runs, len(tc.runs))
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	a := schedCheck("a", time.Second)
	b := a
	if fingerprint(&a) != fingerprint(&b) {
		t.Error("equal definitions have different fingerprints")
	}
	b.HTTP.Headers = map[string]string{"X-Token": "secret"}
	if fingerprint(&a) == fingerprint(&b) {
		t.Error("a header change kept the fingerprint")
	}
	c := a
	c.Jitter = 0.2
	if fingerprint(&a) == fingerprint(&c) {
		t.Error("a jitter change kept the fingerprint")
	}
}
