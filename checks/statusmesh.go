package checks

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of MeshOptions.
const (
	DefaultMeshMembers = 64
	DefaultMeshTimeout = 2 * time.Second
	DefaultMeshWait    = time.Second
	DefaultMeshMaxAge  = 5 * time.Second
	// maxMemberStatus bounds one member's /status body; the fetch asks for
	// its HTTP checks without history, about 1 KiB a check, so 4 MiB holds
	// a member with 4,000 of them.
	maxMemberStatus = 4 << 20
	// maxMeshFetches bounds the fetches in flight, and so the bodies decoded
	// at once: 16 MiB at most, well inside the pod's 64 MiB memory limit.
	maxMeshFetches = 4
)

// MeshOptions bounds the page's fetches of the members' /status; zero fields take the defaults.
type MeshOptions struct {
	// MaxMembers is the most members fetched and drawn.
	MaxMembers int
	// Timeout bounds each member's fetch.
	Timeout time.Duration
	// Wait is the longest a page waits for fetches in flight; slower members show as pending.
	Wait time.Duration
	// MaxAge is how long fetched results are reused before a page starts new fetches.
	MaxAge time.Duration
	// Client makes the fetches; nil means a client of its own that follows no proxy.
	Client *http.Client
}

// meshMember is one sidecar of the mesh, as this one finds it in its checks.
type meshMember struct {
	Name string // host:port, what the checks' targets are matched against
	Base string // scheme://host:port
	Page string // Base + /status
}

// memberSeries lists what a check says of the members it probes: each
// resolved address of an each_address HTTP check, or the host:port of an
// HTTP check of a heartbeat payload path (/heartbeat/…), which only another
// sidecar serves. The port is the member's payload port, where /status is
// served too.
func memberSeries(cs *CheckStatus, each func(scheme, hostport string, s *SeriesStatus)) {
	u, err := url.Parse(cs.Target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return
	}
	if len(cs.Addresses) > 0 {
		for i := range cs.Addresses {
			if a := &cs.Addresses[i]; a.Address.IsValid() {
				each(u.Scheme, a.Address.String(), a)
			}
		}
		return
	}
	if !strings.HasPrefix(u.Path, "/heartbeat/") || u.Hostname() == "" {
		return
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	each(u.Scheme, net.JoinHostPort(u.Hostname(), port), &cs.SeriesStatus)
}

// meshMembers lists the members this sidecar knows of, in name order: those
// its checks probe, and every member in the view of its HTTP mesh checks,
// with the port those checks probe. At most limit are listed, those this
// sidecar probes, is probed by, or is, first; total is how many it knows.
func meshMembers(all []CheckStatus, from []*check, limit int) (members []meshMember, total int) {
	near, far := map[string]meshMember{}, map[string]meshMember{}
	add := func(set map[string]meshMember, scheme, hostport string) {
		base := scheme + "://" + hostport
		set[hostport] = meshMember{Name: hostport, Base: base, Page: base + "/status"}
	}
	for i := range all {
		memberSeries(&all[i], func(scheme, hostport string, _ *SeriesStatus) { add(near, scheme, hostport) })
		cs := &all[i]
		u, err := url.Parse(cs.Target)
		if cs.Mesh == nil || i >= len(from) || err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			continue
		}
		view := from[i].view.Load()
		if view == nil {
			continue
		}
		port := uint16(from[i].cfg.Server.Port)
		if self := view.Self(); self.IsValid() {
			add(near, u.Scheme, netip.AddrPortFrom(self, port).String())
		}
		for _, w := range cs.Mesh.RingWatchers {
			add(near, u.Scheme, w.String())
		}
		for _, a := range view.Addrs() {
			add(far, u.Scheme, netip.AddrPortFrom(a, port).String())
		}
	}
	for name := range near {
		delete(far, name)
	}
	members = append(sortedMembers(near), sortedMembers(far)...)
	total = len(members)
	members = members[:min(total, limit)]
	slices.SortFunc(members, func(a, b meshMember) int { return compareHostPort(a.Name, b.Name) })
	return members, total
}

// sortedMembers is set's members in name order.
func sortedMembers(set map[string]meshMember) []meshMember {
	out := make([]meshMember, 0, len(set))
	for _, m := range set {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b meshMember) int { return compareHostPort(a.Name, b.Name) })
	return out
}

// compareHostPort orders addresses numerically and names after them.
func compareHostPort(a, b string) int {
	pa, ea := netip.ParseAddrPort(a)
	pb, eb := netip.ParseAddrPort(b)
	switch {
	case ea == nil && eb == nil:
		return pa.Compare(pb)
	case ea == nil:
		return -1
	case eb == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// memberResult is the last fetch of one member.
type memberResult struct {
	cells map[string]meshCell // by target member name; only the members drawn are kept
	err   string
	at    time.Time
}

// meshView fetches the members' /status concurrently and keeps the last
// result of each, so a page waits at most Wait and never on a slow member;
// each member has its own fetch, so a slow one does not hold back the others' refresh.
type meshView struct {
	o      MeshOptions
	client *http.Client

	mu      sync.Mutex
	results map[string]memberResult  // by Base
	pending map[string]chan struct{} // fetches in flight, closed when done
	slots   chan struct{}            // bounds the fetches decoding at once
}

func newMeshView(o MeshOptions) *meshView {
	o.MaxMembers = cmp.Or(o.MaxMembers, DefaultMeshMembers)
	o.Timeout = cmp.Or(o.Timeout, DefaultMeshTimeout)
	o.Wait = cmp.Or(o.Wait, DefaultMeshWait)
	o.MaxAge = cmp.Or(o.MaxAge, DefaultMeshMaxAge)
	c := o.Client
	if c == nil {
		// Members are addressed directly: an environment proxy would not reach pod addresses.
		c = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 30 * time.Second}}
	}
	// Never follow a member's redirect elsewhere.
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &meshView{o: o, client: &cc, results: map[string]memberResult{}, pending: map[string]chan struct{}{},
		slots: make(chan struct{}, maxMeshFetches)}
}

// refresh starts a fetch of every member whose result is missing or older
// than MaxAge and not already being fetched, forgets members no longer
// listed, and returns the fetches in flight for members.
func (v *meshView) refresh(members []meshMember, now time.Time) []chan struct{} {
	v.mu.Lock()
	defer v.mu.Unlock()
	keep := make(map[string]bool, len(members))
	var waits []chan struct{}
	for _, m := range members {
		keep[m.Base] = true
		if done, ok := v.pending[m.Base]; ok {
			waits = append(waits, done)
			continue
		}
		if r, ok := v.results[m.Base]; ok && now.Sub(r.at) < v.o.MaxAge {
			continue
		}
		done := make(chan struct{})
		v.pending[m.Base] = done
		waits = append(waits, done)
		go func() {
			v.slots <- struct{}{}
			res := v.fetch(m, members)
			<-v.slots
			v.mu.Lock()
			v.results[m.Base] = res
			delete(v.pending, m.Base)
			v.mu.Unlock()
			close(done)
		}()
	}
	for base := range v.results {
		if !keep[base] {
			delete(v.results, base) // bounded by the current members
		}
	}
	return waits
}

// fetch reads one member's /status JSON, without history, within Timeout.
func (v *meshView) fetch(m meshMember, names []meshMember) memberResult {
	ctx, cancel := context.WithTimeout(context.Background(), v.o.Timeout)
	defer cancel()
	res := memberResult{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.Base+"/status?history=0&type=http", nil)
	if err != nil {
		res.err = err.Error()
		return res
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		res.err = "unreachable"
		if ctx.Err() != nil {
			res.err = fmt.Sprintf("no answer in %s", v.o.Timeout)
		}
		return res
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		res.err = fmt.Sprintf("status %d", resp.StatusCode)
		return res
	}
	var doc StatusDocument
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxMemberStatus)).Decode(&doc); err != nil {
		res.err = "unreadable /status"
		return res
	}
	res.cells = make(map[string]meshCell, len(names))
	for _, t := range names {
		if c, ok := meshCellOf(m, t, doc.Checks); ok {
			res.cells[t.Name] = c
		}
	}
	return res
}

// meshMatrix is the prober × target view the page draws.
type meshMatrix struct {
	Members []meshMember
	Total   int // members known, more than Members when the page draws only the first MaxMembers
	Rows    []meshRow
	Took    string
	Partial bool
}

type meshRow struct {
	Member meshMemberView
	Cells  []meshCell
}

type meshMemberView struct {
	meshMember
	Error string
}

type meshCell struct {
	Prober, Target string
	State          string // up, down, unknown, or none when the prober reports nothing of the target
	Text           string
	Link           string
}

// matrix fetches (or reuses) every member's status, waiting at most Wait,
// and draws what it has.
func (v *meshView) matrix(ctx context.Context, members []meshMember) meshMatrix {
	members = members[:min(len(members), v.o.MaxMembers)]
	start := time.Now()
	t := time.NewTimer(v.o.Wait)
	defer t.Stop()
wait:
	for _, done := range v.refresh(members, start) {
		select {
		case <-done:
		case <-t.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	m := meshMatrix{Members: members, Total: len(members), Took: fmtDuration(time.Since(start))}
	v.mu.Lock()
	results := make([]memberResult, len(members))
	have := make([]bool, len(members))
	for i, mb := range members {
		results[i], have[i] = v.results[mb.Base]
	}
	v.mu.Unlock()
	for i, p := range members {
		row := meshRow{Member: meshMemberView{meshMember: p}}
		switch {
		case !have[i]:
			row.Member.Error, m.Partial = "pending", true
		case results[i].err != "":
			row.Member.Error = results[i].err
		}
		for _, tg := range members {
			c, ok := results[i].cells[tg.Name]
			if !ok {
				c = meshCell{Prober: p.Name, Target: tg.Name, State: "none", Link: p.Page, Text: p.Name + " → " + tg.Name + ": no data"}
			}
			row.Cells = append(row.Cells, c)
		}
		m.Rows = append(m.Rows, row)
	}
	return m
}

// stateRank orders states worst first, for a cell several checks cover.
var stateRank = map[State]int{StateDown: 0, StateUnknown: 1, StateUp: 2}

// meshCellOf is what prober p's checks say of target t: the worst state
// among its checks of that member; false when none probes it.
func meshCellOf(p, t meshMember, checks []CheckStatus) (meshCell, bool) {
	cell := meshCell{Prober: p.Name, Target: t.Name, Link: p.Page}
	found := false
	var worst State
	for i := range checks {
		cs := &checks[i]
		memberSeries(cs, func(_, hostport string, s *SeriesStatus) {
			if hostport != t.Name || (found && stateRank[s.State] >= stateRank[worst]) {
				return
			}
			worst, found = s.State, true
			cell.Link = p.Page + "#check-" + cs.Name
			cell.Text = fmt.Sprintf("%s → %s: %s (check %s, last run %s)", p.Name, t.Name, s.State, cs.Name, fmtDuration(time.Duration(s.LastDuration)))
			if !s.LastSuccess && s.LastError != "" {
				cell.Text += ": " + s.LastError
			}
		})
	}
	cell.State = worst.String()
	return cell, found
}

// meshWatcher is one ring watcher as the page shows it.
type meshWatcher struct {
	Address string
	State   string // what the watcher reports of this sidecar; unknown without its fetched /status
	Text    string
}

// watchers is what each of m's ring watchers reports of m's self, read
// from the matrix's fetched statuses.
func (mx meshMatrix) watchers(m *MeshStatus) []meshWatcher {
	self, err := netip.ParseAddr(m.Self)
	out := make([]meshWatcher, 0, len(m.RingWatchers))
	for _, w := range m.RingWatchers {
		mw := meshWatcher{Address: w.String(), State: "unknown", Text: w.String() + ": its /status was not read"}
		if err == nil {
			if c, ok := mx.cell(w.String(), netip.AddrPortFrom(self, w.Port()).String()); ok && c.State != "none" {
				mw.State, mw.Text = c.State, c.Text
			}
		}
		out = append(out, mw)
	}
	return out
}

// cell is what prober reports of target, when the matrix drew both.
func (mx meshMatrix) cell(prober, target string) (meshCell, bool) {
	for _, row := range mx.Rows {
		if row.Member.Name != prober {
			continue
		}
		for _, c := range row.Cells {
			if c.Target == target {
				return c, true
			}
		}
	}
	return meshCell{}, false
}
