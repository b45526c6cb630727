package checks

import (
	"html/template"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// referencePage is the page as html/template draws it from
// testdata/status.html: writePage must match it byte for byte, so its
// escaping is html/template's in every context. Tests may link
// html/template; the binary must not (TestNoTemplateLinked).
func referencePage(t *testing.T) *template.Template {
	t.Helper()
	src, err := os.ReadFile("testdata/status.html")
	if err != nil {
		t.Fatal(err)
	}
	return template.Must(template.New("status").Funcs(template.FuncMap{
		"raw": func(s string) template.HTML { return template.HTML(s) },
	}).Parse(string(src)))
}

// hostileText holds markup, both quotes, &, +, NUL, invalid UTF-8 and non-ASCII.
const hostileText = `<script>alert('x')</script> & "q" a+b ` + "\x00 \xff é"

// hostileLinks are links html/template filters (javascript:, data:, an
// odd-case scheme) or normalizes (spaces, quotes, non-ASCII, % escapes).
var hostileLinks = []string{
	"javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<b>x</b>", "vbscript:x",
	`http://h/a b"c'<d>é?x=1&y=2+3#f`, "https://h/%41%zz%4", "HTTPS://h/", "/relative/path:colon", "?q=1", "#frag", "",
}

func hostileView() pageView {
	p := &page{o: PageOptions{TraceURL: "http://traces.test/trace/{trace_id}?from=heartbeat&x=" + hostileText}}
	start := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	runs := []Run{
		{Start: start, Duration: Seconds(time.Millisecond), Outcome: OutcomeSuccess, StatusCode: 200},
		{Start: start.Add(time.Second), Duration: Seconds(2 * time.Millisecond), Outcome: OutcomeFailure, ErrorType: "status_code", Reason: hostileText, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"},
		{Start: start.Add(2 * time.Second), Outcome: OutcomeSkipped},
	}
	row := pageRow{Label: hostileText, Address: "[::1]:80", State: "down", StateText: hostileText,
		Strip: p.strip(runs), Spark: sparkline(runs),
		Phases: phaseBar([]Phase{{Name: probe.PhaseDNS, Duration: Seconds(time.Millisecond)}, {Name: hostileText, Duration: Seconds(time.Millisecond)}}),
		Uptime: "66.7 %", Last: hostileText, Figures: figureText([]probe.Figure{{Name: hostileText, Text: hostileText}}),
		Cert: hostileText, CertWarn: true, TraceLink: p.traceLink("4bf92f3577b34da6a3ce929d0e0e4736"), TraceID: hostileText}
	plain := row
	plain.Address, plain.CertWarn, plain.TraceLink, plain.Figures, plain.Cert = "", false, "", "", ""
	v := pageView{Now: start, Refresh: 10, Total: 7, Matched: 3, Shown: 2, Failing: 1, Truncated: true, Filtered: true,
		Query: pageQuery{Name: hostileText, Type: "http", State: "down", History: 60},
		Types: []string{"http", hostileText, "tcp"}, States: []string{"down", "up", "unknown"}, HasMesh: true}
	v.Checks = []pageCheck{
		{CheckStatus: CheckStatus{Name: hostileText, Type: "http", Target: hostileText}, Class: "failing", Rows: []pageRow{plain, row}},
		{CheckStatus: CheckStatus{Name: "fresh", Type: "dns", Target: "example.test"}, Class: "pending", Rows: []pageRow{{State: "unknown", StateText: "unknown, no runs yet", Last: "no run yet"}}},
		{CheckStatus: CheckStatus{Name: "mesh", Type: "http", Target: "http://peers.test:80/heartbeat/1", Mesh: &MeshStatus{Mode: "sweep", Members: 30, ViewHash: 4294967295,
			Self: "127.0.0.4", Epoch: -3, SweepPeers: []MeshPeer{{Address: netip.MustParseAddrPort("127.0.0.9:80"), State: StateDown}, {Address: netip.MustParseAddrPort("[::1]:80")}}}},
			Watchers: []meshWatcher{{Address: "127.0.0.7:80", State: "up", Text: hostileText}, {Address: "[::1]:80", State: hostileText, Text: "x"}},
			Class:    "failing", Rows: []pageRow{{State: "up"}, {Address: "127.0.0.5:80", Role: roleText["ring"], State: "up"}, {Address: "127.0.0.9:80", Role: hostileText, State: "down"}}},
	}
	for i, l := range hostileLinks {
		m := meshMember{Name: hostileText, Page: l}
		v.Mesh.Members = append(v.Mesh.Members, m)
		r := meshRow{Member: meshMemberView{meshMember: m}}
		if i%2 == 0 {
			r.Member.Error = hostileText
		}
		r.Cells = []meshCell{{Prober: hostileText, Target: l, State: "up", Text: hostileText, Link: l}}
		v.Mesh.Rows = append(v.Mesh.Rows, r)
	}
	v.Mesh.Took, v.Mesh.Partial, v.Mesh.Total = "1.2ms", true, 100
	return v
}

func TestPageMatchesHTMLTemplate(t *testing.T) {
	ref := referencePage(t)
	full := hostileView()
	views := map[string]pageView{
		"empty":   {Now: full.Now, Refresh: 10, States: full.States},
		"one":     {Now: full.Now, Refresh: 1, Total: 1, Matched: 1, Shown: 1, Checks: full.Checks[1:], States: full.States},
		"hostile": full,
	}
	for name, v := range views {
		var want, got strings.Builder
		if err := ref.Execute(&want, v); err != nil {
			t.Fatal(err)
		}
		if err := writePage(&got, v); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			g, w := got.String(), want.String()
			i := 0
			for i < len(g) && i < len(w) && g[i] == w[i] {
				i++
			}
			t.Errorf("%s: page differs from html/template's at byte %d\n got: %q\nwant: %q", name, i, g[max(i-80, 0):min(i+80, len(g))], w[max(i-80, 0):min(i+80, len(w))])
		}
	}
}

// TestHrefValue pins the link rule: only http, https and relative URLs
// reach href; anything else becomes html/template's #ZgotmplZ.
func TestHrefValue(t *testing.T) {
	for in, want := range map[string]string{
		"javascript:alert(1)":  unsafeURL,
		" javascript:x":        unsafeURL,
		"data:text/html,x":     unsafeURL,
		"mailto:a@b":           unsafeURL, // html/template allows mailto; no link here is one
		"HTTP://h/x?a=1&b=2+3": "HTTP://h/x?a=1&amp;b=2&#43;3",
		`https://h/a b"<é`:     "https://h/a%20b%22%3c%c3%a9",
		"/status#check-a:b":    "/status#check-a:b",
		"%41%zz":               "%41%25zz",
	} {
		if got := hrefValue(in); got != want {
			t.Errorf("hrefValue(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoTemplateLinked keeps text/template out of the binary: its
// reflective method lookup stops the linker from dropping unused methods,
// about 3 MB of the stripped binary.
func TestNoTemplateLinked(t *testing.T) {
	// grpcnotrace is a tag of make build; without it grpc links x/net/trace's pages, which use html/template.
	out, err := exec.Command("go", "list", "-deps", "-tags", "grpcnotrace", "github.com/heartbeat-sidecar/heartbeat").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "text/template" || pkg == "html/template" {
			t.Errorf("the heartbeat binary links %s; write HTML by hand (see writePage)", pkg)
		}
	}
}
