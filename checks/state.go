package checks

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// State is a check's health after thresholds are applied.
type State int

// States. A check starts Unknown; its first success makes it Up without a
// notice (starting is not news) while FailureThreshold consecutive failures
// make it Down with an alert, so a check failing from the start alerts.
const (
	StateUnknown State = iota
	StateUp
	StateDown
)

// String returns "unknown", "up" or "down".
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	default:
		return "unknown"
	}
}

// MarshalText makes /status show states as words.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the words MarshalText writes, for clients of /status.
func (s *State) UnmarshalText(b []byte) error {
	for _, v := range []State{StateUnknown, StateUp, StateDown} {
		if string(b) == v.String() {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("unknown check state %q", b)
}

// Seconds is a duration that JSON shows as a number of seconds.
type Seconds time.Duration

// MarshalJSON writes the duration in seconds.
func (s Seconds) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(s).Seconds()) }

// UnmarshalJSON reads a number of seconds.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*s = Seconds(math.Round(f * float64(time.Second)))
	return nil
}

// SeriesStatus is the state and last result of a check or of one of its addresses, as /status shows it.
type SeriesStatus struct {
	// Address is the resolved address of an each_address series or the
	// peer of a ring series; for the sweep series, the last peer probed.
	Address netip.AddrPort `json:"address,omitzero"`
	// Role is "ring" or "sweep" for the series of a mesh check.
	Role                 string    `json:"role,omitempty"`
	State                State     `json:"state"`
	Since                time.Time `json:"since,omitzero"` // when State last changed
	ConsecutiveFailures  int       `json:"consecutive_failures"`
	ConsecutiveSuccesses int       `json:"consecutive_successes"`
	Runs                 uint64    `json:"runs"`
	Failures             uint64    `json:"failures"`
	Skipped              uint64    `json:"skipped,omitempty"`
	LastRun              time.Time `json:"last_run,omitzero"`
	LastDuration         Seconds   `json:"last_duration_seconds"`
	LastSuccess          bool      `json:"last_success"`
	LastResult           string    `json:"last_result,omitempty"`
	LastError            string    `json:"last_error,omitempty"`
	LastErrorType        string    `json:"last_error_type,omitempty"`
	LastErrorAt          time.Time `json:"last_error_at,omitzero"`
	StatusCode           int       `json:"status_code,omitempty"`
	CertExpiry           time.Time `json:"cert_expiry,omitzero"`
	ProtocolVersion      string    `json:"protocol_version,omitempty"` // HTTP version of the last response: "1.1", "2"
	// PathMTU is the path MTU in bytes an mtu check's last run measured.
	PathMTU int `json:"path_mtu,omitempty"`
	// Loss is the fraction of echoes an icmp check's last run lost.
	Loss *float64 `json:"loss,omitempty"`
	// The last throughput run's rates, download and upload.
	ReceiveBitsPerSecond  float64 `json:"receive_bits_per_second,omitempty"`
	TransmitBitsPerSecond float64 `json:"transmit_bits_per_second,omitempty"`
	// Uptime is the share of the retained runs that passed (skipped runs left out); absent before the first run.
	Uptime *float64 `json:"uptime,omitempty"`
	// LastPhases is the last run's phase breakdown, in order.
	LastPhases []Phase `json:"last_phases,omitempty"`
	// History is the latest runs, oldest first, at most --status-history of them.
	History []Run `json:"history,omitempty"`
}

// transition is what one run did to a series' State.
type transition int

const (
	noTransition transition = iota
	wentDown
	wentUp
)

// apply folds one run's outcome into the state and reports a transition.
// Thresholds below 1 count as 1.
func (st *SeriesStatus) apply(ok bool, failThreshold, okThreshold int, now time.Time) transition {
	failThreshold = max(failThreshold, 1)
	okThreshold = max(okThreshold, 1)
	st.Runs++
	if ok {
		st.ConsecutiveSuccesses++
		st.ConsecutiveFailures = 0
		switch {
		case st.State == StateUnknown:
			st.State, st.Since = StateUp, now
		case st.State == StateDown && st.ConsecutiveSuccesses >= okThreshold:
			st.State, st.Since = StateUp, now
			return wentUp
		}
		return noTransition
	}
	st.Failures++
	st.ConsecutiveFailures++
	st.ConsecutiveSuccesses = 0
	if st.State != StateDown && st.ConsecutiveFailures >= failThreshold {
		st.State, st.Since = StateDown, now
		return wentDown
	}
	return noTransition
}

// inUTC returns st with its times in UTC, as /status shows them.
func (st SeriesStatus) inUTC() SeriesStatus {
	for _, t := range []*time.Time{&st.Since, &st.LastRun, &st.LastErrorAt, &st.CertExpiry} {
		if !t.IsZero() {
			*t = t.UTC()
		}
	}
	return st
}
