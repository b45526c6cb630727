//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/html"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// renderBudget lets the page's own requests (the trace from the query API)
// finish and render before the DOM is dumped or the screenshot taken.
const renderBudget = "--virtual-time-budget=15000"

// Screenshot is where the browser test saves the trace page, for README.
const Screenshot = "bin/jaeger-trace.png"

// jaegerUI: the real Jaeger UI, in headless Chromium, renders the trace
// page of A's probe of B (assertion 3's trace): the probe span of sidecar
// A, its phase spans as its children, and sidecar B's server span beneath
// it, read from the rendered DOM. It saves a screenshot under bin/.
func jaegerUI(ctx context.Context, e *env) (string, error) {
	if e.s.NoJaegerUI != "" {
		return "", unavailable(e.s.NoJaegerUI)
	}
	if _, err := exec.LookPath("chromium"); err != nil {
		return "", unavailable("chromium not installed (scripts/e2e.sh installs Debian's chromium)")
	}
	if e.probe == nil {
		return "", errors.New("no complete probe trace to open: assertion 3 failed")
	}
	page := e.jaeger + "/trace/" + e.probe.TraceID
	dir, err := os.MkdirTemp("", "heartbeat-chromium-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)

	var rows map[string]traceRow
	err = Poll(ctx, 60*time.Second, time.Second, func(ctx context.Context) error {
		// Tall enough that the virtualized timeline renders every row.
		dom, err := testkit.Chromium(ctx, filepath.Join(dir, "dump"), renderBudget, "--window-size=1400,1400", "--dump-dom", page)
		if err != nil {
			return err
		}
		if rows, err = traceRows(dom); err != nil {
			return err
		}
		return checkTraceRows(rows, e.probe)
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", page, err)
	}
	shot := filepath.Join(e.s.opts.Root, Screenshot)
	// The trace header and its six rows, for README.
	if _, err := testkit.Chromium(ctx, filepath.Join(dir, "shot"), renderBudget, "--window-size=1400,440", "--screenshot="+shot, page); err != nil {
		return "", err
	}
	if st, err := os.Stat(shot); err != nil || st.Size() == 0 {
		return "", fmt.Errorf("no screenshot at %s: %v", shot, err)
	}
	var phases []string
	for id := range e.probe.Phases {
		phases = append(phases, rows[id].Name)
	}
	slices.Sort(phases)
	p, srv := rows[e.probe.Probe], rows[e.probe.Server]
	return fmt.Sprintf("%s renders %q (%s) with children [%s] and %q (%s) at depth %d beneath it; screenshot %s",
		page, p.Name, p.Service, strings.Join(phases, ", "), srv.Name, srv.Service, len(srv.Ancestors)-len(p.Ancestors), Screenshot), nil
}

// traceRow is one span row of the Jaeger UI's trace timeline.
type traceRow struct {
	Service, Name string
	// Ancestors are the span ids the row is indented under, root first.
	Ancestors []string
}

// traceRows reads the timeline's span rows from the rendered DOM: each is a
// VirtualizedTraceView--row keyed "<span id>--bar", indented by one
// SpanTreeOffset--indentGuide per ancestor (data-ancestor-id), naming the
// service (span-svc-name) and the operation (endpoint-name).
func traceRows(dom []byte) (map[string]traceRow, error) {
	doc, err := html.Parse(bytes.NewReader(dom))
	if err != nil {
		return nil, err
	}
	rows := map[string]traceRow{}
	for n := range doc.Descendants() {
		key, ok := strings.CutSuffix(attr(n, "data-item-key"), "--bar")
		if !ok || !hasClass(n, "VirtualizedTraceView--row") {
			continue
		}
		var r traceRow
		for c := range n.Descendants() {
			switch {
			case hasClass(c, "SpanTreeOffset--indentGuide"):
				if id := attr(c, "data-ancestor-id"); id != "root" {
					r.Ancestors = append(r.Ancestors, id)
				}
			case hasClass(c, "span-svc-name"):
				r.Service = strings.TrimSpace(text(c))
			case hasClass(c, "endpoint-name"):
				r.Name = strings.TrimSpace(text(c))
			}
		}
		rows[key] = r
	}
	if len(rows) == 0 {
		return nil, errors.New("no span rows in the rendered page (the UI did not render the trace)")
	}
	return rows, nil
}

// checkTraceRows checks the timeline against the trace the query API gave.
func checkTraceRows(rows map[string]traceRow, want *probeSpans) error {
	p, ok := rows[want.Probe]
	if !ok {
		return fmt.Errorf("no row for the probe span %s among %d rows", want.Probe, len(rows))
	}
	if p.Name != "probe "+CheckPeer || p.Service != ServiceName {
		return fmt.Errorf("probe span's row shows %q of %q, want %q of %q", p.Name, p.Service, "probe "+CheckPeer, ServiceName)
	}
	if len(want.Phases) == 0 {
		return fmt.Errorf("trace %s has no phase child spans to look for", want.TraceID)
	}
	for id, name := range want.Phases {
		r, ok := rows[id]
		if !ok {
			return fmt.Errorf("no row for the phase span %s (%s)", id, name)
		}
		if r.Name != name || len(r.Ancestors) == 0 || r.Ancestors[len(r.Ancestors)-1] != want.Probe {
			return fmt.Errorf("phase row %q under %v, want %q directly under the probe span %s", r.Name, r.Ancestors, name, want.Probe)
		}
	}
	s, ok := rows[want.Server]
	if !ok {
		return fmt.Errorf("no row for B's server span %s", want.Server)
	}
	if s.Name != want.ServerName || !slices.Contains(s.Ancestors, want.Probe) {
		return fmt.Errorf("server row %q under %v, want %q beneath the probe span %s", s.Name, s.Ancestors, want.ServerName, want.Probe)
	}
	return nil
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
	return n.Type == html.ElementNode && slices.Contains(strings.Fields(attr(n, "class")), class)
}

func text(n *html.Node) string {
	var b strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			b.WriteString(c.Data)
		}
	}
	return b.String()
}
