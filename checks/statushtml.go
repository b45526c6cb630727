package checks

import (
	"bufio"
	"io"
	"strconv"
	"strings"
)

// The page is written by hand rather than with html/template: text/template
// looks fields and methods up by name through reflection, and a binary that
// does so keeps every exported method of every type the linker cannot prove
// unused, about 3 MB of the stripped binary. Every value goes through
// htmlEscape, and every link through hrefValue.

// htmlEscape escapes text and quoted attribute values with the entities
// html/template uses, NUL included.
var htmlEscape = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;").Replace

// unsafeURL replaces a link whose scheme is not http or https, as
// html/template's own placeholder does, so the link goes nowhere.
const unsafeURL = "#ZgotmplZ"

// hrefValue is a URL made safe for a quoted href: only http, https and
// relative URLs pass, bytes a URL may not hold are percent-encoded (valid
// escapes kept), and the result is escaped for the attribute.
func hrefValue(u string) string {
	if scheme, _, ok := strings.Cut(u, ":"); ok && !strings.Contains(scheme, "/") &&
		!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") {
		return unsafeURL
	}
	return htmlEscape(normalizeURL(u))
}

// normalizeURL percent-encodes every byte that is neither unreserved nor
// reserved in RFC 3986, such as spaces, quotes and non-ASCII bytes.
func normalizeURL(s string) string {
	var b strings.Builder
	written := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.IndexByte("-._~!#$&*+,/:;=?@[]", c) >= 0:
			continue
		case c == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]):
			continue
		}
		if written == 0 {
			b.Grow(len(s) + 16)
		}
		b.WriteString(s[written:i])
		b.WriteByte('%')
		b.WriteString(strconv.FormatUint(uint64(c)>>4, 16))
		b.WriteString(strconv.FormatUint(uint64(c)&0xf, 16))
		written = i + 1
	}
	if written == 0 {
		return s
	}
	b.WriteString(s[written:])
	return b.String()
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// pageWriter writes markup; its methods name what they escape. Errors
// stick in the bufio.Writer and come out of Flush.
type pageWriter struct{ *bufio.Writer }

// raw writes markup as it is.
func (w pageWriter) raw(parts ...string) {
	for _, s := range parts {
		_, _ = w.WriteString(s)
	}
}

// text writes a value escaped, for text or a quoted attribute.
func (w pageWriter) text(s string) { _, _ = w.WriteString(htmlEscape(s)) }

// int writes a number.
func (w pageWriter) int(n int) { _, _ = w.WriteString(strconv.Itoa(n)) }

// attr writes ` name="value"`, escaped.
func (w pageWriter) attr(name, value string) {
	w.raw(" ", name, `="`)
	w.text(value)
	w.raw(`"`)
}

// link writes <a href="…">text</a>.
func (w pageWriter) link(href, text string) {
	w.raw(`<a href="`, hrefValue(href), `">`)
	w.text(text)
	w.raw("</a>")
}

// writePage writes the whole /status page.
func writePage(out io.Writer, v pageView) error {
	w := pageWriter{bufio.NewWriterSize(out, 32<<10)}
	w.raw(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>`)
	if v.Failing > 0 {
		w.raw("(")
		w.int(v.Failing)
		w.raw(" down) ")
	}
	w.raw(`heartbeat checks</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="`)
	w.int(v.Refresh)
	w.raw(`">
`, pageStyle, `<h1>heartbeat checks</h1>
<p>`)
	writeSummary(w, v)
	writeFilter(w, v)
	writeChecks(w, v)
	if v.HasMesh {
		writeMesh(w, v.Mesh)
	}
	w.raw("\n</body></html>\n")
	return w.Flush()
}

const pageStyle = `<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .6em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f4f4f4}
.up{color:#176f2c;font-weight:600}.down{color:#b00020;font-weight:600}.unknown{color:#777}
tr.failing td:first-child{border-left:4px solid #b00020}tr.flapping td:first-child{border-left:4px solid #e8a200}
td.addr{padding-left:2em;color:#555}
code{font-size:90%}
ol.runs{display:flex;list-style:none;margin:0;padding:0;gap:1px}
li.run{width:6px;height:18px;background:#2e9e4a}li.run.failure{background:#d0312d}li.run.skipped{background:#bbb}
li.run a{display:block;width:100%;height:100%}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
svg.spark polyline{fill:none;stroke:#4a6fa5;stroke-width:1.5}svg.spark circle{fill:#d0312d}
.legend{font-size:85%;color:#555}.ph i{display:inline-block;width:.7em;height:.7em;margin-right:.2em}
.warn{color:#b00020;font-weight:600}
form{margin:.5em 0 1em}form label{margin-right:1em}
.matrix{width:auto}.matrix td.cell{width:1.6em;height:1.6em;padding:0;text-align:center;border:2px solid #fff}
.matrix td.cell a{display:block;width:100%;height:100%;text-decoration:none;color:inherit}
.cell.up{background:#2e9e4a}.cell.down{background:#d0312d}.cell.unknown{background:#ddd}.cell.none{background:#f7f7f7}
</style></head><body>
`

// writeSummary writes the counts line, ending the paragraph writePage opened.
func writeSummary(w pageWriter, v pageView) {
	if v.Filtered {
		w.int(v.Matched)
		w.raw(" of ")
		w.int(v.Total)
		w.raw(" checks match")
	} else {
		w.int(v.Total)
		w.raw(" check")
		if v.Total != 1 {
			w.raw("s")
		}
	}
	if v.Failing > 0 {
		w.raw(`, <span class="down">`)
		w.int(v.Failing)
		w.raw(" down</span>")
	}
	w.raw(", as of ", v.Now.Format("2006-01-02 15:04:05 UTC"), "; failing checks first.</p>\n")
}

// writeFilter writes the filter form and the truncation notice.
func writeFilter(w pageWriter, v pageView) {
	w.raw(`<form method="get" action="" role="search">
<label>name <input name="name" value="`)
	w.text(v.Query.Name)
	w.raw(`"></label>
<label>type <select name="type"><option value="">any</option>`)
	writeOptions(w, v.Types, v.Query.Type)
	w.raw(`</select></label>
<label>state <select name="state"><option value="">any</option>`)
	writeOptions(w, v.States, v.Query.State)
	w.raw(`</select></label>
<button type="submit">filter</button>`)
	if v.Filtered {
		w.raw(` <a href="?">clear</a>`)
	}
	w.raw("\n</form>\n")
	if v.Truncated {
		w.raw("<p>Showing the first ")
		w.int(v.Shown)
		w.raw(" of ")
		w.int(v.Matched)
		w.raw("; narrow the filter or add <code>limit=</code> to see more.</p>")
	}
	w.raw("\n")
}

func writeOptions(w pageWriter, options []string, selected string) {
	for _, o := range options {
		w.raw("<option")
		if o == selected {
			w.raw(" selected")
		}
		w.raw(">")
		w.text(o)
		w.raw("</option>")
	}
}

// writeChecks writes the table of checks, one row per series.
func writeChecks(w pageWriter, v pageView) {
	w.raw(`<table id="checks">
<thead><tr><th>check</th><th>type</th><th>target</th><th>state</th><th>uptime</th><th>last `)
	w.int(v.Query.History)
	w.raw(` runs</th><th>latency</th><th>last run</th></tr></thead>
<tbody>
`)
	for _, c := range v.Checks {
		for i, r := range c.Rows {
			writeRow(w, &c, i, &r)
		}
	}
	w.raw("\n</tbody></table>\n")
}

func writeRow(w pageWriter, c *pageCheck, i int, r *pageRow) {
	w.raw("\n<tr")
	w.attr("class", c.Class)
	w.attr("data-check", c.Name)
	if r.Address != "" {
		w.attr("data-address", r.Address)
	}
	if i == 0 {
		w.attr("id", "check-"+c.Name)
	}
	w.raw(">\n")
	if i == 0 {
		w.raw("<td>")
		w.text(c.Name)
		w.raw("</td><td>")
		w.text(c.Type)
		w.raw("</td><td><code>")
		w.text(c.Target)
		w.raw("</code>")
		if c.Mesh != nil {
			writeMeshView(w, c.Mesh, c.Watchers)
		}
		w.raw("</td>")
	} else {
		w.raw(`<td class="addr" colspan="3">→ <code>`)
		w.text(r.Address)
		w.raw("</code>")
		if r.Role != "" {
			w.raw(` <span class="role">`)
			w.text(r.Role)
			w.raw("</span>")
		}
		w.raw("</td>")
	}
	w.raw("\n<td")
	w.attr("class", r.State)
	w.raw(">")
	w.text(r.StateText)
	w.raw("</td>\n<td>")
	w.text(r.Uptime)
	w.raw("</td>\n<td>", r.Strip, "</td>\n<td>", r.Spark, r.Phases, "</td>\n", `<td class="last">`)
	w.text(r.Last)
	if r.Figures != "" {
		w.raw(`<div class="figures">`)
		w.text(r.Figures)
		w.raw("</div>")
	}
	if r.Cert != "" {
		w.raw(`<div class="cert`)
		if r.CertWarn {
			w.raw(" warn")
		}
		w.raw(`">certificate: `)
		w.text(r.Cert)
		w.raw("</div>")
	}
	if r.TraceID != "" {
		w.raw(`<div class="trace">trace `)
		if r.TraceLink != "" {
			w.link(r.TraceLink, r.TraceID)
		} else {
			w.raw("<code>")
			w.text(r.TraceID)
			w.raw("</code>")
		}
		w.raw("</div>")
	}
	w.raw("</td>\n</tr>")
}

// writeMeshView writes what a mesh check's last resolution showed, its ring
// watchers and the sweep peers of its epoch; the ring peers are the check's
// address rows.
func writeMeshView(w pageWriter, m *MeshStatus, watchers []meshWatcher) {
	w.raw(`<div class="mesh">`)
	w.text(m.Mode)
	w.raw(" mesh: ")
	w.int(m.Members)
	w.raw(" members, self ")
	w.text(m.Self)
	if !m.Counted {
		w.raw(" (not in the answer)")
	}
	w.raw(", view ", strconv.FormatUint(uint64(m.ViewHash), 10))
	if len(watchers) > 0 {
		w.raw("; ring watchers:")
		for _, mw := range watchers {
			w.raw(" <code")
			w.attr("class", "watcher "+mw.State)
			w.attr("title", mw.Text)
			w.raw(">")
			w.text(mw.Address)
			w.raw("</code>")
		}
	}
	if len(m.SweepPeers) > 0 {
		w.raw("; epoch ", strconv.FormatInt(m.Epoch, 10), " sweep peers:")
		for _, p := range m.SweepPeers {
			st := p.State.String()
			w.raw(` <code class="`, st, `" title="`, st, `">`)
			w.text(p.Address.String())
			w.raw("</code>")
		}
	}
	w.raw("</div>")
}

// writeMesh writes the prober × target matrix.
func writeMesh(w pageWriter, m meshMatrix) {
	w.raw("\n<h2>mesh</h2>\n<p>What each member reports of the others: rows probe, columns are probed. ")
	w.int(len(m.Members))
	if m.Total > len(m.Members) {
		w.raw(" of ")
		w.int(m.Total)
		w.raw(" members (only the first are fetched: those this sidecar probes, is probed by, or is, then in address order)")
	} else {
		w.raw(" members")
	}
	w.raw(", read in ")
	w.text(m.Took)
	if m.Partial {
		w.raw(", some still pending")
	}
	w.raw(".</p>\n<table class=\"matrix\" id=\"mesh\">\n<thead><tr><th>prober ↓ target →</th>")
	for _, mb := range m.Members {
		w.raw("<th>")
		w.link(mb.Page, mb.Name)
		w.raw("</th>")
	}
	w.raw("</tr></thead>\n<tbody>")
	for _, row := range m.Rows {
		w.raw("\n<tr")
		w.attr("data-member", row.Member.Name)
		w.raw("><th>")
		w.link(row.Member.Page, row.Member.Name)
		if row.Member.Error != "" {
			w.raw(` <span class="warn">`)
			w.text(row.Member.Error)
			w.raw("</span>")
		}
		w.raw("</th>\n")
		for _, c := range row.Cells {
			w.raw("<td")
			w.attr("class", "cell "+c.State)
			w.attr("data-prober", c.Prober)
			w.attr("data-target", c.Target)
			w.attr("title", c.Text)
			w.raw(`><a href="`, hrefValue(c.Link), `"><span class="sr">`)
			w.text(c.Text)
			w.raw("</span></a></td>")
		}
		w.raw("</tr>")
	}
	w.raw("\n</tbody></table>\n")
}
