package checks

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// DefaultStatusHistory is how many runs each series keeps for /status when Settings.StatusHistory is zero.
const DefaultStatusHistory = 60

// MaxStatusHistory bounds Settings.StatusHistory: the page draws one cell per run.
const MaxStatusHistory = 1000

// Outcome is how one run in the history ended.
type Outcome uint8

// Outcomes, as probe.runs counts them.
const (
	OutcomeSuccess Outcome = iota
	OutcomeFailure
	OutcomeSkipped
)

var outcomeNames = [...]string{OutcomeSuccess: "success", OutcomeFailure: "failure", OutcomeSkipped: "skipped"}

// String returns "success", "failure" or "skipped".
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// MarshalText makes /status show outcomes as words.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads the words MarshalText writes, for clients of /status.
func (o *Outcome) UnmarshalText(b []byte) error {
	if i := slices.Index(outcomeNames[:], string(b)); i >= 0 {
		*o = Outcome(i)
		return nil
	}
	return fmt.Errorf("unknown run outcome %q", b)
}

// Run is one past run of a series, as /status reports it.
type Run struct {
	Start      time.Time `json:"start"`
	Duration   Seconds   `json:"duration_seconds"`
	Outcome    Outcome   `json:"outcome"`
	ErrorType  string    `json:"error_type,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	StatusCode int       `json:"status_code,omitempty"`
	// TraceID is the run's trace, kept for failed runs whose trace was sampled.
	TraceID string         `json:"trace_id,omitempty"`
	Figures []probe.Figure `json:"figures,omitempty"`
}

// Phase is one phase of a run and how long it took.
type Phase struct {
	Name     string  `json:"name"`
	Duration Seconds `json:"duration_seconds"`
}

// runRecord is a Run as the ring holds it. At thousands of checks times
// dozens of runs the record's size is the history's cost, and the garbage
// collector would scan every record holding a pointer on every cycle. So a
// record is 16 bytes with no pointer: the details only some runs have
// (failures, figures) are kept beside the ring, one entry per stretch of
// consecutive runs that share them.
type runRecord struct {
	start   int64  // unix nanoseconds
	dur     uint32 // microseconds, saturated at about 71 minutes
	code    uint16
	outcome Outcome
}

// recordDuration is d as a record holds it.
func recordDuration(d time.Duration) uint32 {
	return uint32(min(max(d/time.Microsecond, 0), math.MaxUint32))
}

// runDetail is the part of a run most runs do not have.
type runDetail struct {
	errType, reason string
	trace           trace.TraceID
	figures         []probe.Figure
}

// detailStretch is n consecutive records sharing one detail; nil for none.
type detailStretch struct {
	d *runDetail
	n int
}

// history is a fixed-size ring of a series' latest runs; callers hold series.mu.
type history struct {
	recs []runRecord // allocated at the first run, at full size
	next int         // where the next record goes
	n    int         // records held
	// details covers the held records, oldest first: the counts add up to n.
	details []detailStretch
}

// add keeps r with its details d (nil for none), dropping the oldest record once size are held.
func (h *history) add(r runRecord, d *runDetail, size int) {
	if size <= 0 {
		return
	}
	if h.recs == nil {
		h.recs = make([]runRecord, size)
	}
	if h.n == len(h.recs) {
		h.dropOldestDetail()
	}
	h.recs[h.next] = r
	h.next = (h.next + 1) % len(h.recs)
	h.n = min(h.n+1, len(h.recs))
	if k := len(h.details) - 1; k >= 0 && h.details[k].d == d {
		h.details[k].n++
	} else {
		h.details = append(h.details, detailStretch{d: d, n: 1})
	}
}

// dropOldestDetail forgets the oldest record's share of its stretch.
func (h *history) dropOldestDetail() {
	h.details[0].n--
	if h.details[0].n == 0 {
		h.details[0] = detailStretch{} // let the detail go
		h.details = h.details[1:]
	}
}

// last returns the details of the latest record; nil when there are none.
func (h *history) last() *runDetail {
	if len(h.details) == 0 {
		return nil
	}
	return h.details[len(h.details)-1].d
}

// sameAs reports whether o holds d's failure and figs.
func (d *runDetail) sameAs(o *runDetail, figs []probe.Figure) bool {
	return d.errType == o.errType && d.reason == o.reason && d.trace == o.trace && slices.Equal(figs, o.figures)
}

// runs returns at most limit of the latest records as Runs, oldest first.
func (h *history) runs(limit int) []Run {
	k := min(h.n, max(limit, 0))
	if k == 0 {
		return nil
	}
	out := make([]Run, k)
	skip := h.n - k // held records older than the ones asked for
	stretch, left := 0, h.details[0].n
	for i := range h.n {
		for left == 0 {
			stretch++
			left = h.details[stretch].n
		}
		left--
		if i < skip {
			continue
		}
		r := h.recs[(h.next-h.n+i+2*len(h.recs))%len(h.recs)]
		run := Run{Start: time.Unix(0, r.start).UTC(), Duration: Seconds(time.Duration(r.dur) * time.Microsecond),
			Outcome: r.outcome, StatusCode: int(r.code)}
		if d := h.details[stretch].d; d != nil {
			run.ErrorType, run.Reason, run.Figures = d.errType, d.reason, d.figures
			if d.trace.IsValid() {
				run.TraceID = d.trace.String()
			}
		}
		out[i-skip] = run
	}
	return out
}

// remember adds res to s's history and keeps its phases; callers hold s.mu.
func (s *series) remember(ctx context.Context, res probe.Result, reason string, size int) {
	rec := runRecord{start: res.Start.UnixNano(), dur: recordDuration(res.Duration), code: uint16(min(max(res.StatusCode, 0), 65535))}
	var buf [6]probe.Figure
	figs := runFigures(buf[:0], res) // on the stack until kept
	var d runDetail
	if !res.Success {
		rec.outcome = OutcomeFailure
		d.errType, d.reason = res.ErrorType, reason
		if sc := trace.SpanContextFromContext(ctx); sc.IsSampled() {
			d.trace = sc.TraceID()
		}
	}
	var more *runDetail
	if !res.Success || len(figs) > 0 {
		// Runs alike share one detail, so a check whose every run reports
		// the same protocol costs nothing beyond its records.
		if prev := s.hist.last(); prev != nil && d.sameAs(prev, figs) {
			more = prev
		} else {
			more = &runDetail{errType: d.errType, reason: d.reason, trace: d.trace, figures: slices.Clone(figs)}
		}
	}
	s.hist.add(rec, more, size)
	s.keepPhases(res.Phases)
}

// keepPhases keeps the last run's phases as /status shows them, in the
// series' own buffer: the run's timings hold two times and a name per
// phase, and would keep the run's slice alive until the next run.
func (s *series) keepPhases(phases []probe.PhaseTiming) {
	s.phases = s.phases[:0]
	for _, p := range phases {
		s.phases = append(s.phases, Phase{Name: p.Name, Duration: Seconds(p.End.Sub(p.Start))})
	}
}

// runFigures appends the prober's figures, then the typed figures the
// probers report in Result (negotiated protocol, path MTU, loss,
// throughput), so the page shows them all the same way.
func runFigures(dst []probe.Figure, res probe.Result) []probe.Figure {
	dst = append(dst, res.Figures...)
	if res.ProtocolVersion != "" {
		dst = append(dst, probe.Figure{Name: "protocol", Text: httpVersion(res.ProtocolVersion)})
	}
	if m := res.PathMTU; m != nil {
		if m.MTU > 0 {
			dst = append(dst, probe.Figure{Name: "path_mtu", Value: float64(m.MTU), Unit: "By"})
		}
		if m.Largest > 0 {
			dst = append(dst, probe.Figure{Name: "largest_response", Value: float64(m.Largest), Unit: "By"})
		}
	}
	if e := res.Echo; e != nil && e.Sent > 0 {
		dst = append(dst, probe.Figure{Name: "loss", Value: e.Loss(), Unit: "1"})
	}
	for _, t := range res.Transfers {
		dst = append(dst, probe.Figure{Name: t.Direction, Value: math.Round(t.BitsPerSecond()), Unit: "bit/s"})
	}
	return dst
}

// httpVersion names an HTTP version as "HTTP/2"; the usual ones without
// building a string on every run.
func httpVersion(v string) string {
	switch v {
	case "1.1":
		return "HTTP/1.1"
	case "2":
		return "HTTP/2"
	case "1.0":
		return "HTTP/1.0"
	}
	return "HTTP/" + v
}

// rememberSkip adds a skipped run at t; callers hold s.mu.
func (s *series) rememberSkip(t time.Time, size int) {
	s.hist.add(runRecord{start: t.UnixNano(), outcome: OutcomeSkipped}, nil, size)
}

// lastPhases returns the last run's phases as /status shows them; callers hold s.mu.
func (s *series) lastPhases() []Phase {
	if len(s.phases) == 0 {
		return nil
	}
	return slices.Clone(s.phases)
}

// uptime is the share of held runs that passed, skipped runs left out; nil when none ran.
func (h *history) uptime() *float64 {
	var ok, ran int
	for i := range h.n {
		switch h.recs[i].outcome {
		case OutcomeSuccess:
			ok++
			ran++
		case OutcomeFailure:
			ran++
		}
	}
	if ran == 0 {
		return nil
	}
	u := float64(ok) / float64(ran)
	return &u
}
