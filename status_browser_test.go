//go:build browser

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/heartbeat-sidecar/heartbeat/checks"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// The browser test: three sidecars on 127.0.0.2-4 probing each other's
// payload (which makes them a mesh on the page), the
// first also with a passing, a failing and a flapping check, their /status
// pages loaded in headless Chromium and the DOM it rendered checked
// against the JSON the same sidecar serves.

const traceUI = "http://traces.heartbeat.test/trace/{trace_id}"

// pageSidecar is one heartbeat serve process.
type pageSidecar struct {
	base string
	cmd  *exec.Cmd
}

func buildHeartbeat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "heartbeat")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building heartbeat: %v\n%s", err, out)
	}
	return bin
}

// meshPort finds a port free on every address, since each_address checks
// give all members one port.
func meshPort(t *testing.T, hosts []string) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", hosts[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		ok := true
		var held []net.Listener
		for _, h := range hosts[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(h, port))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		ln.Close()
		for _, l := range held {
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on every mesh address")
	return ""
}

// flapper answers 200 and 503 in turn.
func flapper(t *testing.T) string {
	t.Helper()
	var n atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1)%2 == 0 {
			http.Error(w, "<b>flap</b>", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// startSidecar runs one sidecar on host:port probing every host, with a
// ring+sweep mesh check of the members the DNS server at resolver answers.
func startSidecar(t *testing.T, bin, dir, host, port, resolver, extra string, hosts []string) *pageSidecar {
	t.Helper()
	var b strings.Builder
	b.WriteString("defaults:\n  interval: 1s\n  timeout: 500ms\n  jitter: 0\nchecks:\n")
	fmt.Fprintf(&b, "  - name: ring\n    type: http\n    target: http://%s/heartbeat/1\n    peers: %s\n",
		net.JoinHostPort(meshName, port), meshPlanYAML)
	for _, h := range hosts {
		fmt.Fprintf(&b, "  - name: member-%s\n    type: http\n    target: http://%s/heartbeat/1\n", h, net.JoinHostPort(h, port))
	}
	b.WriteString(extra)
	cfg := filepath.Join(dir, host+".yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort(host, port)
	cmd := exec.Command(bin, "serve", "--listen", addr, "--config", cfg, "--syslog-addr", "none", "--trace-url", traceUI,
		"--peers-resolver", resolver)
	// Export traces to a closed port: runs are sampled and carry trace ids,
	// and the failing export never blocks the sidecar.
	cmd.Env = append(os.Environ(), "POD_IP="+host, "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+testkit.ClosedAddr(t),
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_METRICS_EXPORTER=none", "OTEL_LOGS_EXPORTER=none")
	log, err := os.Create(filepath.Join(dir, host+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	s := &pageSidecar{base: "http://" + addr, cmd: cmd}
	testkit.WaitFor(t, 20*time.Second, host+" serving", func() (bool, string) {
		resp, err := http.Get(s.base + "/status")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	return s
}

func (s *pageSidecar) status(t *testing.T) checks.StatusDocument {
	t.Helper()
	resp, err := http.Get(s.base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc checks.StatusDocument
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// browser renders pages in Chromium, each run with a new profile under dir.
type browser struct {
	dir string
	n   int
}

func (b *browser) run(t *testing.T, args ...string) []byte {
	t.Helper()
	b.n++
	out, err := testkit.Chromium(context.Background(), filepath.Join(b.dir, "profile-"+strconv.Itoa(b.n)), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// dom dumps what Chromium rendered of url.
func (b *browser) dom(t *testing.T, url string) *html.Node {
	t.Helper()
	out := b.run(t, "--window-size=1400,1000", "--dump-dom", url)
	doc, err := html.Parse(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return doc
}

// screenshot saves url as bin/<name>.png for a person to look at.
func (b *browser) screenshot(t *testing.T, url, name string, height int) {
	t.Helper()
	if err := os.MkdirAll("bin", 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join("bin", name+".png")
	b.run(t, fmt.Sprintf("--window-size=1400,%d", height), "--hide-scrollbars", "--screenshot="+shot, url)
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot %s", shot)
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// find returns every element under n that match accepts, in document order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for c := range n.Descendants() {
		if c.Type == html.ElementNode && match(c) {
			out = append(out, c)
		}
	}
	return out
}

// row returns the main row of check name (not an address row).
func row(t *testing.T, doc *html.Node, name string) *html.Node {
	t.Helper()
	rows := find(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "id") == "check-"+name })
	if len(rows) != 1 {
		t.Fatalf("%d rows for check %q in the rendered page", len(rows), name)
	}
	return rows[0]
}

func runsOf(doc checks.StatusDocument, name string) []checks.Run {
	for _, c := range doc.Checks {
		if c.Name == name {
			return c.History
		}
	}
	return nil
}

// The ring+sweep mesh check every sidecar runs; with three members each
// probes one ring peer and the other member as its sweep peer.
const (
	meshName     = "peers.status.test"
	meshPlanYAML = "{mode: sweep, k: 1, sweep: 1, epoch: 2s}"
)

var meshPlan = mesh.Plan{Mode: mesh.ModeSweep, K: 1, Sweep: 1, Epoch: 2 * time.Second}

func TestStatusPageInChromium(t *testing.T) {
	bin := buildHeartbeat(t)
	dir := t.TempDir()
	b := &browser{dir: dir}
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	port := meshPort(t, hosts)
	var ips []netip.Addr
	for _, h := range hosts {
		ips = append(ips, netip.MustParseAddr(h))
	}
	dns := startHeadless(t, meshName)
	dns.setMembers(ips)
	closed := testkit.ClosedAddr(t)
	extra := fmt.Sprintf(`  - name: payload
    type: http
    target: http://127.0.0.2:%s/heartbeat/16
  - name: refused
    type: tcp
    target: %s
    failure_threshold: 3
  - name: flapping
    type: http
    target: http://%s/
    failure_threshold: 3
`, port, closed, flapper(t))
	var sidecars []*pageSidecar
	for i, h := range hosts {
		e := ""
		if i == 0 {
			e = extra
		}
		sidecars = append(sidecars, startSidecar(t, bin, dir, h, port, dns.addr, e, hosts))
	}
	a := sidecars[0]
	page := a.base + "/status"

	// Wait (through JSON) until every check has a few runs and the
	// failing one is down, so the page has something to show.
	testkit.WaitFor(t, 30*time.Second, "runs on every check of "+a.base, func() (bool, string) {
		doc := a.status(t)
		for _, c := range doc.Checks {
			if len(c.History) < 4 || (c.Name == "refused" && c.State != checks.StateDown) {
				return false, fmt.Sprintf("%s: %d runs, %s", c.Name, len(c.History), c.State)
			}
		}
		return true, ""
	})

	t.Run("history", func(t *testing.T) {
		dom := b.dom(t, page)
		doc := a.status(t) // after the dump: it holds every run the page drew
		for _, name := range []string{"payload", "refused", "flapping"} {
			r := row(t, dom, name)
			cells := find(r, func(n *html.Node) bool { return n.Data == "li" && hasClass(n, "run") })
			runs := runsOf(doc, name)
			byStart := map[string]checks.Run{}
			for _, run := range runs {
				byStart[run.Start.Format(time.RFC3339Nano)] = run
			}
			if len(cells) < 4 {
				t.Fatalf("%s: %d history cells", name, len(cells))
			}
			ran := 0
			for _, c := range cells {
				run, ok := byStart[attr(c, "data-start")]
				if !ok || run.Outcome.String() != attr(c, "data-outcome") || !hasClass(c, run.Outcome.String()) {
					t.Errorf("%s: cell %s %s has no matching run in the JSON", name, attr(c, "data-start"), attr(c, "data-outcome"))
				}
				if attr(c, "title") == "" || len(find(c, func(n *html.Node) bool { return hasClass(n, "sr") })) != 1 {
					t.Errorf("%s: cell without hover or screen-reader text", name)
				}
				if run.Outcome != checks.OutcomeSkipped {
					ran++
				}
			}
			// Every run up to the last cell drawn is drawn: none skipped over.
			last, err := time.Parse(time.RFC3339Nano, attr(cells[len(cells)-1], "data-start"))
			if err != nil {
				t.Fatalf("%s: last cell's start: %v", name, err)
			}
			drawn := 0
			for _, run := range runs {
				if !run.Start.After(last) {
					drawn++
				}
			}
			if drawn != len(cells) {
				t.Errorf("%s: %d cells, but the JSON has %d runs up to the last one drawn", name, len(cells), drawn)
			}
			lines := find(r, func(n *html.Node) bool { return n.Data == "polyline" })
			if len(lines) != 1 {
				t.Fatalf("%s: %d sparklines", name, len(lines))
			}
			if pts := len(strings.Fields(attr(lines[0], "points"))); pts != ran {
				t.Errorf("%s: sparkline has %d points for %d runs", name, pts, ran)
			}
			if name == "payload" {
				if len(find(r, func(n *html.Node) bool { return n.Data == "rect" })) < 3 {
					t.Errorf("payload: the last run's phase bar has fewer than 3 phases")
				}
				figs := find(r, func(n *html.Node) bool { return hasClass(n, "figures") })
				if len(figs) != 1 || figs[0].FirstChild == nil || figs[0].FirstChild.Data != "protocol HTTP/1.1" {
					t.Errorf("payload: no negotiated protocol among the last run's figures")
				}
			}
		}
		// The failing check's failed runs link their traces.
		r := row(t, dom, "refused")
		links := find(r, func(n *html.Node) bool { return n.Data == "a" && attr(n, "data-trace-id") != "" })
		if len(links) == 0 {
			t.Fatal("refused: no run links a trace")
		}
		ids := map[string]bool{}
		for _, run := range runsOf(doc, "refused") {
			ids[run.TraceID] = true
		}
		for _, l := range links {
			id := attr(l, "data-trace-id")
			if want := strings.ReplaceAll(traceUI, "{trace_id}", id); attr(l, "href") != want || !ids[id] {
				t.Errorf("trace link %s (id %s) is not the JSON run's trace", attr(l, "href"), id)
			}
		}
		// Failing first: refused (down) is drawn before payload (up).
		order := find(dom, func(n *html.Node) bool { return n.Data == "tr" && strings.HasPrefix(attr(n, "id"), "check-") })
		idx := func(name string) int {
			return slices.IndexFunc(order, func(n *html.Node) bool { return attr(n, "id") == "check-"+name })
		}
		if idx("refused") > idx("payload") || idx("flapping") > idx("payload") {
			t.Errorf("failing checks are not first: refused %d, flapping %d, payload %d", idx("refused"), idx("flapping"), idx("payload"))
		}
		b.screenshot(t, page, "status-page", 1100)
	})

	t.Run("filter", func(t *testing.T) {
		// The filter is a plain GET form and query parameters: the page
		// carries no script, and its Content-Security-Policy allows none.
		dom := b.dom(t, page+"?state=down&type=tcp")
		if s := find(dom, func(n *html.Node) bool { return n.Data == "script" }); len(s) != 0 {
			t.Errorf("the page has %d script elements", len(s))
		}
		forms := find(dom, func(n *html.Node) bool { return n.Data == "form" && attr(n, "method") == "get" })
		if len(forms) != 1 || len(find(forms[0], func(n *html.Node) bool { return slices.Contains([]string{"name", "type", "state"}, attr(n, "name")) })) != 3 {
			t.Error("no GET form with name, type and state fields")
		}
		req, _ := http.NewRequest(http.MethodGet, page, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("Content-Security-Policy %q allows scripts", csp)
		}
		rows := find(dom, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-check") != "" })
		var names []string
		for _, r := range rows {
			names = append(names, attr(r, "data-check"))
		}
		if !slices.Equal(names, []string{"refused"}) {
			t.Errorf("state=down&type=tcp shows %v, want [refused]", names)
		}
		chosen := find(dom, func(n *html.Node) bool {
			return n.Data == "option" && slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return a.Key == "selected" })
		})
		if len(chosen) != 2 {
			t.Errorf("the form shows %d chosen filters, want type and state", len(chosen))
		}
		b.screenshot(t, page+"?state=down", "status-filter", 400)
	})

	t.Run("mesh", func(t *testing.T) {
		var cells []*html.Node
		testkit.WaitFor(t, 30*time.Second, "every member pair up in the mesh matrix", func() (bool, string) {
			dom := b.dom(t, sidecars[1].base+"/status")
			cells = find(dom, func(n *html.Node) bool { return n.Data == "td" && hasClass(n, "cell") })
			up := 0
			for _, c := range cells {
				if hasClass(c, "up") {
					up++
				}
			}
			return len(cells) == len(hosts)*len(hosts) && up == len(cells), fmt.Sprintf("%d cells, %d up", len(cells), up)
		})
		pairs := map[string]bool{}
		for _, c := range cells {
			pairs[attr(c, "data-prober")+" "+attr(c, "data-target")] = true
			links := find(c, func(n *html.Node) bool { return n.Data == "a" })
			if len(links) != 1 || !strings.HasPrefix(attr(links[0], "href"), "http://"+attr(c, "data-prober")+"/status") {
				t.Errorf("cell %s → %s does not link to the prober's page", attr(c, "data-prober"), attr(c, "data-target"))
			}
		}
		for _, p := range hosts {
			for _, q := range hosts {
				if !pairs[net.JoinHostPort(p, port)+" "+net.JoinHostPort(q, port)] {
					t.Errorf("no cell for %s → %s", p, q)
				}
			}
		}
		// The ring check names its one ring watcher, which reports it up.
		dom := b.dom(t, sidecars[1].base+"/status")
		want := mesh.NewView(ips, ips[1]).Watchers(meshPlan)
		got := find(row(t, dom, "ring"), func(n *html.Node) bool { return n.Data == "code" && hasClass(n, "watcher") })
		if len(want) != 1 || len(got) != 1 || got[0].FirstChild == nil || got[0].FirstChild.Data != net.JoinHostPort(want[0].String(), port) || !hasClass(got[0], "up") {
			var text []string
			for _, g := range got {
				text = append(text, attr(g, "class")+" "+attr(g, "title"))
			}
			t.Errorf("ring watchers drawn %v, want %v up", text, want)
		}
		b.screenshot(t, sidecars[1].base+"/status#mesh", "status-mesh", 900)
	})
}
