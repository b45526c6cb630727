package checks

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// ErrBadTraceURL is wrapped by the error for a trace URL template the page cannot use.
var ErrBadTraceURL = errors.New("invalid trace URL template")

// TraceIDPlaceholder is what a trace URL template has where the trace id goes.
const TraceIDPlaceholder = "{trace_id}"

// DefaultPageRefresh is how often the page reloads itself when PageOptions.Refresh is zero.
const DefaultPageRefresh = 10 * time.Second

// PageOptions configures the /status page.
type PageOptions struct {
	// TraceURL links failed runs to a trace UI, such as "http://jaeger:16686/trace/{trace_id}"; empty shows ids as text.
	TraceURL string
	// Refresh is how often the page reloads itself; 0 means DefaultPageRefresh.
	Refresh time.Duration
	// Mesh bounds the fetches of the members' status; zero fields take the defaults.
	Mesh MeshOptions
}

// Validate reports options the page cannot use.
func (o PageOptions) Validate() error {
	if o.Refresh < 0 {
		return fmt.Errorf("page refresh %s must not be negative", o.Refresh)
	}
	if o.TraceURL == "" {
		return nil
	}
	if !strings.Contains(o.TraceURL, TraceIDPlaceholder) {
		return fmt.Errorf("%w %q: it must contain %s", ErrBadTraceURL, o.TraceURL, TraceIDPlaceholder)
	}
	u, err := url.Parse(strings.ReplaceAll(o.TraceURL, TraceIDPlaceholder, "0"))
	if err != nil {
		return fmt.Errorf("%w %q: %w", ErrBadTraceURL, o.TraceURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w %q: want an http:// or https:// URL with a host", ErrBadTraceURL, o.TraceURL)
	}
	return nil
}

// page renders /status as HTML.
type page struct {
	r     *Runner
	o     PageOptions
	mesh  *meshView
	clock func() time.Time
}

func newPage(r *Runner, o PageOptions) (*page, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Refresh == 0 {
		o.Refresh = DefaultPageRefresh
	}
	return &page{r: r, o: o, mesh: newMeshView(o.Mesh), clock: time.Now}, nil
}

// pageView is what writePage draws.
type pageView struct {
	Now                   time.Time
	Refresh               int
	Checks                []pageCheck
	Total, Matched, Shown int
	Failing               int
	Truncated, Filtered   bool
	Query                 pageQuery
	Types, States         []string
	HasMesh               bool
	Mesh                  meshMatrix
}

// pageQuery is the filter as the form shows it.
type pageQuery struct {
	Name, Type, State string
	History           int
}

// pageCheck is one check's row, with its addresses' rows.
type pageCheck struct {
	CheckStatus
	Watchers []meshWatcher // mesh checks: the ring watchers, with what each reports of this sidecar
	Rank     int
	Rows     []pageRow
	Class    string
}

// pageRow is one series: the check itself or one address.
type pageRow struct {
	Label     string
	Address   string
	Role      string // mesh checks: what the series is, "ring peer" or "sweep, last peer probed"
	State     string
	StateText string
	Strip     string // markup, drawn by strip
	Spark     string // markup, drawn by sparkline
	Phases    string // markup, drawn by phaseBar
	Uptime    string
	Last      string
	LastOK    bool
	Figures   string
	Cert      string
	CertWarn  bool
	TraceLink string
	TraceID   string
}

func (p *page) serve(w http.ResponseWriter, req *http.Request, q statusQuery) {
	now := p.clock().UTC()
	// Every check is read without history (for the counts, the order and
	// the mesh); only the checks drawn are read again with it.
	all, from := p.r.statusOf(statusQuery{})
	v := pageView{Now: now, Refresh: int(max(p.o.Refresh.Round(time.Second), time.Second) / time.Second),
		Query:  pageQuery{Name: q.name, Type: q.typ, State: q.state, History: q.history},
		States: []string{"down", "up", "unknown"}, Total: len(all), Filtered: q.name != "" || q.typ != "" || q.state != ""}
	types := map[string]bool{}
	var shown []CheckStatus
	var shownFrom []*check
	for i, cs := range all {
		types[cs.Type] = true
		if q.selects(cs) {
			shown = append(shown, cs)
			shownFrom = append(shownFrom, from[i])
		}
	}
	for t := range types {
		v.Types = append(v.Types, t)
	}
	slices.Sort(v.Types)
	v.Checks = make([]pageCheck, 0, min(len(shown), q.limit))
	ranks := make([]int, len(shown))
	for i := range shown {
		ranks[i] = rank(&shown[i])
		if ranks[i] == 0 {
			v.Failing++
		}
	}
	order := make([]int, len(shown))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ranks[a], ranks[b]) })
	for _, i := range order[:min(len(order), q.limit)] {
		v.Checks = append(v.Checks, p.check(shownFrom[i].status(q.history), ranks[i], now))
	}
	v.Shown, v.Matched = len(v.Checks), len(shown)
	v.Truncated = v.Shown < v.Matched
	if members, total := meshMembers(all, from, p.mesh.o.MaxMembers); len(members) > 0 {
		v.HasMesh = true
		v.Mesh = p.mesh.matrix(req.Context(), members)
		v.Mesh.Total = total
	}
	for i := range v.Checks {
		if m := v.Checks[i].Mesh; m != nil {
			v.Checks[i].Watchers = v.Mesh.watchers(m)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// The page needs no script, font or remote resource: say so to the browser too.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'")
	if err := writePage(w, v); err != nil {
		p.r.log.WarnContext(req.Context(), "writing /status page", "err", err)
	}
}

// selects applies the filters to a check already read.
func (q statusQuery) selects(cs CheckStatus) bool {
	if q.typ != "" && cs.Type != q.typ {
		return false
	}
	if q.name != "" && !strings.Contains(strings.ToLower(cs.Name), strings.ToLower(q.name)) {
		return false
	}
	return q.state == "" || cs.inState(q.state)
}

// rank orders the page: down first, then checks with failures in their
// history (flapping or recovering), then up, then not yet run.
func rank(cs *CheckStatus) int {
	series := append([]SeriesStatus{cs.SeriesStatus}, cs.Addresses...)
	r := 3
	for _, s := range series {
		switch {
		case s.State == StateDown:
			return 0
		case s.Uptime != nil && *s.Uptime < 1, s.ConsecutiveFailures > 0:
			r = min(r, 1)
		case s.State == StateUp:
			r = min(r, 2)
		}
	}
	return r
}

var rankClass = [...]string{"failing", "flapping", "passing", "pending"}

// roleText names a mesh series' role on the page.
var roleText = map[string]string{"ring": "ring peer", "sweep": "sweep, last peer probed"}

func (p *page) check(cs CheckStatus, rank int, now time.Time) pageCheck {
	pc := pageCheck{CheckStatus: cs, Rank: rank, Class: rankClass[rank]}
	pc.Rows = append(pc.Rows, p.row(cs.SeriesStatus, cs, now))
	for _, a := range cs.Addresses {
		r := p.row(a, cs, now)
		r.Address, r.Role = a.Address.String(), roleText[a.Role]
		pc.Rows = append(pc.Rows, r)
	}
	pc.Rows[0].Label = cs.Name
	return pc
}

func (p *page) row(s SeriesStatus, cs CheckStatus, now time.Time) pageRow {
	r := pageRow{State: s.State.String(), StateText: stateText(s, cs), LastOK: s.LastSuccess}
	r.Strip = p.strip(s.History)
	r.Spark = sparkline(s.History)
	r.Phases = phaseBar(s.LastPhases)
	if s.Uptime != nil {
		r.Uptime = strconv.FormatFloat(*s.Uptime*100, 'f', 1, 64) + " %"
	}
	switch {
	case s.LastRun.IsZero():
		r.Last = "no run yet"
	case s.LastSuccess:
		r.Last = s.LastResult
	default:
		r.Last = s.LastErrorType + ": " + s.LastError
	}
	if !s.CertExpiry.IsZero() {
		d := daysLeft(s.CertExpiry, now)
		r.Cert = fmt.Sprintf("%d days left (until %s)", d, s.CertExpiry.Format(time.DateOnly))
		r.CertWarn = d < 14
	}
	for i := len(s.History) - 1; i >= 0; i-- {
		run := s.History[i]
		if run.Outcome == OutcomeSkipped {
			continue
		}
		r.Figures = figureText(run.Figures)
		if run.Outcome == OutcomeFailure && run.TraceID != "" {
			r.TraceID, r.TraceLink = run.TraceID, p.traceLink(run.TraceID)
		}
		break
	}
	return r
}

// stateText is the state with the threshold it is counting toward, such as "down, 3 of 3 failures".
func stateText(s SeriesStatus, cs CheckStatus) string {
	st := s.State.String()
	switch {
	case s.Runs == 0:
		return st + ", no runs yet"
	case s.State == StateDown && s.ConsecutiveSuccesses > 0:
		return fmt.Sprintf("%s, %d of %d successes to recover", st, s.ConsecutiveSuccesses, cs.SuccessThreshold)
	case s.ConsecutiveFailures > cs.FailureThreshold:
		return fmt.Sprintf("%s, %d failures in a row (threshold %d)", st, s.ConsecutiveFailures, cs.FailureThreshold)
	case s.ConsecutiveFailures > 0:
		return fmt.Sprintf("%s, %d of %d failures", st, s.ConsecutiveFailures, cs.FailureThreshold)
	}
	return st
}

// traceLink fills the trace URL template; empty without one.
func (p *page) traceLink(id string) string {
	if p.o.TraceURL == "" {
		return ""
	}
	return strings.ReplaceAll(p.o.TraceURL, TraceIDPlaceholder, url.PathEscape(id))
}

// runText is a run as a sentence: its time, duration and reason.
func runText(r Run) string {
	var b strings.Builder
	b.WriteString(r.Start.Format("15:04:05"))
	b.WriteByte(' ')
	b.WriteString(r.Outcome.String())
	if r.Outcome != OutcomeSkipped {
		b.WriteString(" in ")
		b.WriteString(fmtDuration(time.Duration(r.Duration)))
	}
	if r.StatusCode != 0 {
		b.WriteString(", status ")
		b.WriteString(strconv.Itoa(r.StatusCode))
	}
	if r.ErrorType != "" {
		b.WriteString(": ")
		b.WriteString(r.ErrorType)
	}
	if r.Reason != "" {
		b.WriteString(": ")
		b.WriteString(r.Reason)
	}
	return b.String()
}

// strip draws the history as one cell per run, oldest first, as markup.
func (p *page) strip(runs []Run) string {
	if len(runs) == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(len(runs) * 160)
	b.WriteString(`<ol class="runs" aria-label="last `)
	b.WriteString(strconv.Itoa(len(runs)))
	b.WriteString(` runs, oldest first">`)
	for _, r := range runs {
		text := htmlEscape(runText(r))
		b.WriteString(`<li class="run `)
		b.WriteString(r.Outcome.String())
		b.WriteString(`" data-outcome="`)
		b.WriteString(r.Outcome.String())
		b.WriteString(`" data-start="`)
		b.WriteString(r.Start.Format(time.RFC3339Nano))
		b.WriteString(`" title="`)
		b.WriteString(text)
		b.WriteString(`">`)
		link := ""
		if r.TraceID != "" {
			link = p.traceLink(r.TraceID)
		}
		if link != "" {
			b.WriteString(`<a href="`)
			b.WriteString(hrefValue(link))
			b.WriteString(`" data-trace-id="`)
			b.WriteString(htmlEscape(r.TraceID))
			b.WriteString(`">`)
		}
		b.WriteString(`<span class="sr">`)
		b.WriteString(text)
		if r.TraceID != "" {
			b.WriteString(", trace ")
			b.WriteString(htmlEscape(r.TraceID))
		}
		b.WriteString(`</span>`)
		if link != "" {
			b.WriteString(`</a>`)
		}
		b.WriteString(`</li>`)
	}
	b.WriteString(`</ol>`)
	return b.String()
}

const sparkW, sparkH = 180.0, 28.0

// sparkline draws the runs' durations as an SVG line, one point per run
// that ran (skipped runs have no duration), failures marked in red.
func sparkline(runs []Run) string {
	var pts []Run
	var hi time.Duration
	for _, r := range runs {
		if r.Outcome != OutcomeSkipped {
			pts = append(pts, r)
			hi = max(hi, time.Duration(r.Duration))
		}
	}
	if len(pts) == 0 {
		return ""
	}
	hi = max(hi, time.Microsecond)
	step := 0.0
	if len(pts) > 1 {
		step = sparkW / float64(len(pts)-1)
	}
	var b, marks strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" width="%g" height="%g" viewBox="-2 -2 %g %g" role="img" aria-label="latency of the last %d runs, highest %s"><polyline data-points="%d" points="`,
		sparkW+4, sparkH+4, sparkW+4, sparkH+4, len(pts), fmtDuration(hi), len(pts))
	for i, r := range pts {
		x := float64(i) * step
		y := sparkH - sparkH*float64(r.Duration)/float64(hi)
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
		if r.Outcome == OutcomeFailure {
			fmt.Fprintf(&marks, `<circle cx="%.1f" cy="%.1f" r="2"/>`, x, y)
		}
	}
	b.WriteString(`"/>`)
	b.WriteString(marks.String())
	b.WriteString(`</svg>`)
	return b.String()
}

var phaseColours = map[string]string{
	probe.PhaseDNS: "#7b61ff", probe.PhaseConnect: "#f5a623", probe.PhaseTLS: "#d0021b",
	probe.PhaseRequest: "#4a90e2", probe.PhaseProcessing: "#50e3c2", probe.PhaseTransfer: "#417505",
}

// phaseBar draws the last run's phases as one stacked bar with a legend.
func phaseBar(phases []Phase) string {
	var total time.Duration
	for _, ph := range phases {
		total += max(time.Duration(ph.Duration), 0)
	}
	if total <= 0 {
		return ""
	}
	var bar, legend strings.Builder
	fmt.Fprintf(&bar, `<svg class="phases" width="%g" height="8" role="presentation">`, sparkW)
	x := 0.0
	for i, ph := range phases {
		w := sparkW * float64(max(time.Duration(ph.Duration), 0)) / float64(total)
		colour := cmp.Or(phaseColours[ph.Name], "#999")
		name := htmlEscape(ph.Name)
		fmt.Fprintf(&bar, `<rect x="%.1f" width="%.1f" height="8" fill="%s"><title>%s %s</title></rect>`, x, w, colour, name, fmtDuration(time.Duration(ph.Duration)))
		x += w
		if i > 0 {
			legend.WriteString(" · ")
		}
		fmt.Fprintf(&legend, `<span class="ph"><i style="background:%s"></i>%s %s</span>`, colour, name, fmtDuration(time.Duration(ph.Duration)))
	}
	bar.WriteString(`</svg><div class="legend">`)
	bar.WriteString(legend.String())
	bar.WriteString(`</div>`)
	return bar.String()
}

// figureText is a run's figures as one line: "protocol h2 · path_mtu 1500 B".
func figureText(fs []probe.Figure) string {
	parts := make([]string, 0, len(fs))
	for _, f := range fs {
		parts = append(parts, f.Name+" "+figureValue(f))
	}
	return strings.Join(parts, " · ")
}

// figureValue writes a figure's value for people: SI prefixes for bits per
// second, percent for ratios.
func figureValue(f probe.Figure) string {
	if f.Text != "" {
		return f.Text
	}
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }
	switch f.Unit {
	case "1":
		return num(f.Value*100) + " %"
	case "By":
		return num(f.Value) + " B"
	case "s":
		return fmtDuration(time.Duration(f.Value * float64(time.Second)))
	case "bit/s":
		v, p := f.Value, ""
		for _, pre := range []string{"k", "M", "G", "T"} {
			if v < 1000 {
				break
			}
			v, p = v/1000, pre
		}
		return num(v) + " " + p + "bit/s"
	case "":
		return num(f.Value)
	}
	return num(f.Value) + " " + f.Unit
}
