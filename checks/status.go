package checks

import (
	"encoding/json"
	"html/template"
	"mime"
	"net/http"
	"strings"
	"time"
)

// CheckStatus is one check in the /status document.
type CheckStatus struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Target   string `json:"target"` // secrets redacted
	Interval string `json:"interval"`
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
}

// Status returns every check's state, in file order.
func (r *Runner) Status() []CheckStatus {
	list := r.snapshot()
	out := make([]CheckStatus, 0, len(list))
	for _, c := range list {
		cs := CheckStatus{Name: c.cfg.Name, Type: c.cfg.Type, Target: c.display, Interval: c.cfg.Interval.String()}
		for i, s := range c.allSeries() {
			if i == 0 {
				cs.SeriesStatus = s.status().inUTC()
			} else {
				cs.Addresses = append(cs.Addresses, s.status().inUTC())
			}
		}
		if v := c.view.Load(); v != nil {
			cs.Mesh = &MeshStatus{Mode: c.cfg.Peers.Mode.String(), Members: v.Members(), ViewHash: v.Hash(),
				Self: v.Self().String(), Counted: v.Counted()}
		}
		out = append(out, cs)
	}
	return out
}

// StatusHandler serves every check's state as JSON, or as a page to clients that accept text/html.
func (r *Runner) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		status := r.Status()
		if wantsHTML(req.Header.Values("Accept")) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			if err := statusPage.Execute(w, statusView{Checks: status, Now: time.Now().UTC()}); err != nil {
				r.log.WarnContext(req.Context(), "writing /status page", "err", err)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Checks []CheckStatus `json:"checks"`
		}{status}); err != nil {
			r.log.WarnContext(req.Context(), "writing /status", "err", err)
		}
	})
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

type statusView struct {
	Checks []CheckStatus
	Now    time.Time
}

var statusPage = template.Must(template.New("status").Funcs(template.FuncMap{
	"ms": func(s Seconds) string { return time.Duration(s).Round(10 * time.Microsecond).String() },
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Format(time.RFC3339)
	},
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heartbeat checks</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}
.up{color:#176f2c;font-weight:600}.down{color:#b00020;font-weight:600}.unknown{color:#777}
td.addr{padding-left:2em;color:#555}
code{font-size:90%}
</style></head><body>
<h1>heartbeat checks</h1>
<p>{{len .Checks}} check{{if ne (len .Checks) 1}}s{{end}}, as of {{.Now.Format "2006-01-02 15:04:05 UTC"}}.</p>
<table>
<tr><th>check</th><th>type</th><th>target</th><th>state</th><th>last run</th><th>duration</th><th>result</th></tr>
{{range .Checks}}{{$c := .}}
<tr><td>{{.Name}}</td><td>{{.Type}}</td><td><code>{{.Target}}</code></td>
<td class="{{.State}}">{{.State}}</td><td>{{ts .LastRun}}</td><td>{{ms .LastDuration}}</td>
<td>{{if .LastSuccess}}{{.LastResult}}{{else if .LastError}}{{.LastErrorType}}: {{.LastError}}{{end}}</td></tr>
{{range .Addresses}}
<tr><td class="addr" colspan="3">{{$c.Name}} → <code>{{.Address}}</code></td>
<td class="{{.State}}">{{.State}}</td><td>{{ts .LastRun}}</td><td>{{ms .LastDuration}}</td>
<td>{{if .LastSuccess}}{{.LastResult}}{{else if .LastError}}{{.LastErrorType}}: {{.LastError}}{{end}}</td></tr>
{{end}}{{end}}
</table></body></html>
`))
