package checks

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// CheckStatus is one check in the /status document.
type CheckStatus struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Target   string `json:"target"` // secrets redacted
	Interval string `json:"interval"`
	// FailureThreshold and SuccessThreshold are the consecutive runs that turn the state down and up.
	FailureThreshold int `json:"failure_threshold"`
	SuccessThreshold int `json:"success_threshold"`
	SeriesStatus
	// Addresses has one entry per address of an each_address check, whose own fields describe the resolution.
	Addresses []SeriesStatus `json:"addresses,omitempty"`
	// Mesh is the last view of a mesh check (ring or sweep).
	Mesh *MeshStatus `json:"mesh,omitempty"`
}

// MeshStatus is what a mesh check's last resolution showed.
type MeshStatus struct {
	Mode     string `json:"mode"`
	Members  int    `json:"members"`
	ViewHash uint32 `json:"view_hash"`
	Self     string `json:"self"`
	Counted  bool   `json:"counted"` // self is in the answer
	// Epoch is the sweep epoch of the last run; sweep mode only.
	Epoch int64 `json:"epoch,omitempty"`
	// SweepPeers are the epoch's sweep peers, each with its last outcome; sweep mode only.
	SweepPeers []MeshPeer `json:"sweep_peers,omitempty"`
	// RingWatchers are the members that probe this one as a ring peer, nearest first.
	RingWatchers []netip.AddrPort `json:"ring_watchers,omitempty"`
}

// StatusDocument is the /status JSON document; status.schema.json describes it.
type StatusDocument struct {
	Checks []CheckStatus `json:"checks"`
}

// Status returns every check's state with its whole retained history, in file order.
func (r *Runner) Status() []CheckStatus { return r.status(statusQuery{history: r.keep}) }

// status returns the checks q selects, in file order, each series with at most q.history runs.
func (r *Runner) status(q statusQuery) []CheckStatus {
	out, _ := r.statusOf(q)
	return out
}

// statusOf is status with the check behind each entry.
func (r *Runner) statusOf(q statusQuery) ([]CheckStatus, []*check) {
	list := r.snapshot()
	out := make([]CheckStatus, 0, len(list))
	from := make([]*check, 0, len(list))
	for _, c := range list {
		if !q.selectsCheck(c) {
			continue
		}
		cs := c.status(q.history)
		if q.state != "" && !cs.inState(q.state) {
			continue
		}
		out = append(out, cs)
		from = append(from, c)
	}
	return out, from
}

// status returns the check's state with at most runs runs per series.
func (c *check) status(runs int) CheckStatus {
	cs := CheckStatus{Name: c.cfg.Name, Type: c.cfg.Type, Target: c.display, Interval: c.cfg.Interval.String(),
		FailureThreshold: max(c.cfg.FailureThreshold, 1), SuccessThreshold: max(c.cfg.SuccessThreshold, 1)}
	for i, s := range c.allSeries() {
		if i == 0 {
			cs.SeriesStatus = s.view(runs)
		} else {
			cs.Addresses = append(cs.Addresses, s.view(runs))
		}
	}
	if v := c.view.Load(); v != nil {
		cs.Mesh = &MeshStatus{Mode: c.cfg.Peers.Mode.String(), Members: v.Members(), ViewHash: v.Hash(),
			Self: v.Self().String(), Counted: v.Counted()}
		for _, a := range v.Watchers(c.cfg.Peers) {
			cs.Mesh.RingWatchers = append(cs.Mesh.RingWatchers, netip.AddrPortFrom(a, uint16(c.cfg.Server.Port)))
		}
		if c.sweep != nil {
			cs.Mesh.Epoch, cs.Mesh.SweepPeers = c.sweepLast.snapshot()
		}
	}
	return cs
}

// view returns the series' state in UTC with its latest runs.
func (s *series) view(runs int) SeriesStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st.inUTC()
	st.History = s.hist.runs(runs)
	st.LastPhases = s.lastPhases()
	st.Uptime = s.hist.uptime()
	return st
}

// inState reports whether the check or one of its addresses is in state.
func (cs *CheckStatus) inState(state string) bool {
	if cs.State.String() == state {
		return true
	}
	for _, a := range cs.Addresses {
		if a.State.String() == state {
			return true
		}
	}
	return false
}

// statusQuery is what the query string of /status asks for.
type statusQuery struct {
	name    string // case-insensitive substring of the check name
	typ     string // check type, exactly
	state   string // up, down or unknown: the check or one of its addresses
	history int    // runs per series
	limit   int    // page only: most checks drawn
}

// defaultPageChecks bounds the checks one page draws unless ?limit= asks for more.
const defaultPageChecks = 500

// parseStatusQuery reads /status's query string; every bad parameter is named in the error.
func parseStatusQuery(v url.Values, keep int) (statusQuery, error) {
	q := statusQuery{name: strings.TrimSpace(v.Get("name")), typ: strings.TrimSpace(v.Get("type")),
		state: strings.TrimSpace(v.Get("state")), history: keep, limit: defaultPageChecks}
	var problems []string
	switch q.state {
	case "", "up", "down", "unknown":
	default:
		problems = append(problems, fmt.Sprintf("state %q: want up, down or unknown", q.state))
	}
	num := func(key string, dst *int, hi int) {
		s := v.Get(key)
		if s == "" {
			return
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			problems = append(problems, fmt.Sprintf("%s %q: want a whole number from 0", key, s))
			return
		}
		*dst = min(n, hi)
	}
	num("history", &q.history, keep)
	num("limit", &q.limit, int(^uint(0)>>1))
	if len(problems) > 0 {
		return q, fmt.Errorf("/status query: %s", strings.Join(problems, "; "))
	}
	return q, nil
}

func (q statusQuery) selectsCheck(c *check) bool {
	if q.typ != "" && c.cfg.Type != q.typ {
		return false
	}
	return q.name == "" || strings.Contains(strings.ToLower(c.cfg.Name), strings.ToLower(q.name))
}

// StatusHandler serves every check's state as JSON, or as the page to clients that accept text/html.
func (r *Runner) StatusHandler() http.Handler {
	h, _ := r.StatusPage(PageOptions{})
	return h
}

// StatusPage is StatusHandler with the page's options.
func (r *Runner) StatusPage(o PageOptions) (http.Handler, error) {
	p, err := newPage(r, o)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		q, err := parseStatusQuery(req.URL.Query(), r.keep)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if wantsHTML(req.Header.Values("Accept")) {
			p.serve(w, req, q)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(StatusDocument{Checks: r.status(q)}); err != nil {
			r.log.WarnContext(req.Context(), "writing /status", "err", err)
		}
	}), nil
}

// wantsHTML reports whether an Accept header lists text/html (with a
// non-zero quality); everything else, including no header, gets JSON.
func wantsHTML(accept []string) bool {
	for _, h := range accept {
		for part := range strings.SplitSeq(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || mt != "text/html" {
				continue
			}
			if q := strings.TrimSpace(params["q"]); q == "0" || q == "0.0" || q == "0.00" || q == "0.000" {
				continue
			}
			return true
		}
	}
	return false
}

// daysLeft is the whole days from now until t, negative once t has passed.
func daysLeft(t, now time.Time) int {
	return int(t.Sub(now).Hours() / 24)
}
