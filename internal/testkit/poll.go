package testkit

import (
	"testing"
	"time"
)

// pollInterval is short beside every deadline the tests use, and long enough
// not to starve the code under test of the two cores CI has.
const pollInterval = 5 * time.Millisecond

// WaitFor polls cond until it holds or within passes; detail explains the last failure.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() (ok bool, detail string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if detail != "" {
				detail = ": " + detail
			}
			t.Fatalf("timed out after %v waiting for %s%s", within, what, detail)
		}
		time.Sleep(pollInterval) // polling interval, not a stand-in for a signal
	}
}

// Eventually is WaitFor for a condition with nothing to report.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	WaitFor(t, within, what, func() (bool, string) { return cond(), "" })
}
