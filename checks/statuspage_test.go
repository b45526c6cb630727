package checks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// statusSchema compiles status.schema.json, asserting formats too.
func statusSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("status.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("status.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource("status.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("status.schema.json")
	if err != nil {
		t.Fatalf("compiling status.schema.json: %v", err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, body []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return s.Validate(inst)
}

// markupServer answers every connection with a status line holding markup,
// which net/http quotes in its error: a server-chosen reason.
func markupServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				buf := make([]byte, 4096)
				_, _ = c.Read(buf)
				_, _ = io.WriteString(c, "HTTP/1.1 <img/src=x/onerror=alert(1)> OK\r\nContent-Length: 0\r\n\r\n")
			}()
		}
	}()
	return ln.Addr().String()
}

const hostileName = `<script>alert("name")</script>`

// realChecks runs real probers: passing, refused, a markup-quoting server,
// an each_address check through a DNS server, and a hostile name whose
// target carries a password.
func realChecks(t *testing.T) (*harness, http.Handler) {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "0") }))
	t.Cleanup(web.Close)
	_, port, _ := net.SplitHostPort(web.Listener.Addr().String())
	h := newHarness(t, nil, nil)
	h.r.resolver = startPeerDNS(t, "peers.heartbeat.test", "127.0.0.1").resolver()
	mk := func(name, typ, target string) config.Check {
		c := schedCheck(name, 20*time.Millisecond)
		c.Type, c.Target, c.Timeout = typ, target, time.Second
		return c
	}
	peers := mk("peers", config.TypeHTTP, "http://peers.heartbeat.test:"+port+"/heartbeat/1")
	peers.EachAddress = true
	h.apply(
		mk("pass", config.TypeTCP, testkit.AcceptAndClose(t)),
		mk("refused", config.TypeTCP, testkit.ClosedAddr(t)),
		mk("markup", config.TypeHTTP, "http://"+markupServer(t)+"/"),
		peers,
		mk(hostileName, config.TypeHTTP, "http://probe:hunter2@"+testkit.ClosedAddr(t)+"/%22%3E%3Cb%3E"),
	)
	h.start()
	testkit.Eventually(t, 10*time.Second, "every check and address to run twice", func() bool {
		for _, c := range h.r.Status() {
			if c.Runs < 2 || (c.Name == "peers" && (len(c.Addresses) == 0 || c.Addresses[0].Runs < 2)) {
				return false
			}
		}
		return true
	})
	sh, err := h.r.StatusPage(PageOptions{TraceURL: "http://traces.test/trace/{trace_id}?from=heartbeat"})
	if err != nil {
		t.Fatal(err)
	}
	return h, sh
}

func get(t *testing.T, h http.Handler, target, accept string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestStatusJSONMatchesSchema(t *testing.T) {
	schema := statusSchema(t)
	_, sh := realChecks(t)
	_, body := get(t, sh, "/status", "")
	if err := validate(t, schema, []byte(body)); err != nil {
		t.Fatalf("/status does not match status.schema.json: %v\n%s", err, body)
	}
	for _, want := range []string{`"history"`, `"outcome": "failure"`, `"trace_id"`, `"last_phases"`, `"uptime"`, `"addresses"`} {
		if !strings.Contains(body, want) {
			t.Errorf("/status lacks %s, so the schema test did not cover it:\n%s", want, body)
		}
	}

	// Figures and skipped runs, which today's probers do not produce.
	fh := newHarness(t, nil, func(ctx context.Context, _ probe.Target) probe.Result {
		<-ctx.Done() // outlasts the interval, so runs are skipped
		return probe.Result{Success: true, Figures: []probe.Figure{{Name: "protocol", Text: "h2"},
			{Name: "loss", Value: 0, Unit: "1"}, {Name: "throughput", Value: 9.4e8, Unit: "bit/s"}}}
	})
	c := schedCheck("slow", 10*time.Millisecond)
	c.Timeout = 35 * time.Millisecond
	fh.apply(c)
	fh.start()
	testkit.Eventually(t, 10*time.Second, "a run and a skip", func() bool { s := fh.status("slow"); return s.Runs >= 1 && s.Skipped >= 1 })
	_, body = get(t, fh.r.StatusHandler(), "/status", "")
	if err := validate(t, schema, []byte(body)); err != nil {
		t.Fatalf("/status with figures does not match the schema: %v\n%s", err, body)
	}
	for _, want := range []string{`"outcome": "skipped"`, `"text": "h2"`, `"value": 0,`} {
		if !strings.Contains(body, want) {
			t.Errorf("/status lacks %s:\n%s", want, body)
		}
	}

	// The schema is strict: a field it does not document fails.
	extra := strings.Replace(body, `"name": "slow"`, `"name": "slow", "undocumented": 1`, 1)
	if err := validate(t, schema, []byte(extra)); err == nil {
		t.Error("the schema accepts an undocumented field")
	}
}

func TestStatusPageEscapesAndRedacts(t *testing.T) {
	_, sh := realChecks(t)
	_, js := get(t, sh, "/status", "")
	code, page := get(t, sh, "/status", "text/html")
	if code != http.StatusOK {
		t.Fatalf("page: %d %s", code, page)
	}
	if !strings.Contains(js, `\u003cimg/src=x/onerror=alert(1)\u003e`) {
		t.Fatalf("the markup server's text is not in any reason, so escaping is untested:\n%s", js)
	}
	for _, body := range []string{js, page} {
		if strings.Contains(body, "hunter2") {
			t.Errorf("a password reached /status:\n%s", body)
		}
	}
	for _, bad := range []string{"<script", "<img", "<b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("page holds unescaped %q:\n%s", bad, page)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;name&#34;)&lt;/script&gt;", "&lt;img/src=x/onerror=alert(1)&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks the escaped %q", want)
		}
	}
	if !strings.Contains(page, `href="http://traces.test/trace/`) {
		t.Error("no failed run links its trace")
	}
}

func TestStatusPageFiltersAndOrder(t *testing.T) {
	_, sh := realChecks(t)
	_, page := get(t, sh, "/status", "text/html")
	if i, j := strings.Index(page, `data-check="refused"`), strings.Index(page, `data-check="pass"`); i < 0 || j < 0 || i > j {
		t.Errorf("the failing check is not drawn before the passing one (%d, %d)", i, j)
	}
	for _, tc := range []struct {
		query      string
		want, nope []string
	}{
		{"?state=down", []string{`data-check="refused"`}, []string{`data-check="pass"`}},
		{"?type=tcp", []string{`data-check="pass"`, `data-check="refused"`}, []string{`data-check="markup"`}},
		{"?name=PEE", []string{`data-check="peers"`}, []string{`data-check="pass"`}},
	} {
		_, p := get(t, sh, "/status"+tc.query, "text/html")
		for _, w := range tc.want {
			if !strings.Contains(p, w) {
				t.Errorf("%s: page lacks %s", tc.query, w)
			}
		}
		for _, n := range tc.nope {
			if strings.Contains(p, n) {
				t.Errorf("%s: page still shows %s", tc.query, n)
			}
		}
	}
	if code, body := get(t, sh, "/status?state=sideways&history=-1", ""); code != http.StatusBadRequest ||
		!strings.Contains(body, `state "sideways"`) || !strings.Contains(body, `history "-1"`) {
		t.Errorf("bad query: %d %s, want 400 naming both", code, body)
	}
	if _, body := get(t, sh, "/status?history=0&name=pass", ""); strings.Contains(body, `"history"`) || !strings.Contains(body, `"name": "pass"`) {
		t.Errorf("history=0&name=pass: %s", body)
	}
}

func TestPageOptionsValidate(t *testing.T) {
	for _, bad := range []string{"http://jaeger/trace/", "ftp://x/{trace_id}", "/trace/{trace_id}", "http://%zz/{trace_id}"} {
		if err := (PageOptions{TraceURL: bad}).Validate(); err == nil {
			t.Errorf("trace URL %q accepted", bad)
		}
	}
	if err := (PageOptions{TraceURL: "https://jaeger:16686/trace/{trace_id}"}).Validate(); err != nil {
		t.Errorf("a Jaeger URL: %v", err)
	}
}

// TestMeshMatrix serves three runners' /status, each checking all three
// through each_address checks of IP literals, plus a member that never
// answers: the page draws 4×4 cells and does not wait for the silent one.
func TestMeshMatrix(t *testing.T) {
	const n = 3
	lns := make([]net.Listener, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns[i] = ln
	}
	silent, _ := testkit.BlackHole(t)
	targets := []string{silent}
	for _, ln := range lns {
		targets = append(targets, ln.Addr().String())
	}
	var pages []http.Handler
	for i := range n {
		h := newHarness(t, nil, nil)
		var cs []config.Check
		for j, tg := range targets[1:] {
			c := schedCheck(fmt.Sprintf("member-%d", j), 20*time.Millisecond)
			c.Type, c.Target, c.Timeout, c.EachAddress = config.TypeHTTP, "http://probe:hunter2@"+tg+"/heartbeat/1", time.Second, true
			cs = append(cs, c)
		}
		if i == 0 {
			c := schedCheck("silent", 200*time.Millisecond)
			c.Type, c.Target, c.Timeout, c.EachAddress = config.TypeHTTP, "http://"+silent+"/", 50*time.Millisecond, true
			cs = append(cs, c)
		}
		h.apply(cs...)
		h.start()
		p, err := h.r.StatusPage(PageOptions{Mesh: MeshOptions{Wait: 300 * time.Millisecond, Timeout: time.Minute, MaxAge: 100 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		srv := &http.Server{Handler: p}
		go func() { _ = srv.Serve(lns[i]) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	var page string
	testkit.WaitFor(t, 15*time.Second, "every member pair up in the matrix", func() (bool, string) {
		_, page = get(t, pages[0], "/status", "text/html")
		// A cell per member pair, the silent member's included.
		return strings.Count(page, `class="cell up"`) == n*n && strings.Count(page, `<td class="cell `) == (n+1)*(n+1), page
	})
	if !strings.Contains(page, `data-member="`+silent+`"><th><a href="http://`+silent+`/status">`+silent+`</a> <span class="warn">pending</span>`) {
		t.Errorf("the silent member is not shown pending")
	}
	if strings.Contains(page, "hunter2") {
		t.Error("a member's password reached the mesh view")
	}
	if want := `href="http://` + targets[2] + `/status#check-member-0"`; !strings.Contains(page, want) {
		t.Errorf("no cell links to %s", want)
	}
}

// TestHistoryRedactsReasons: a prober whose reason quotes the target with
// its password (probers should not, the runner redacts anyway) leaves no
// password in the history, on the page or in JSON.
func TestHistoryRedactsReasons(t *testing.T) {
	h := newHarness(t, nil, func(_ context.Context, tg probe.Target) probe.Result {
		return probe.Result{ErrorType: probe.ErrOther, Reason: "GET " + tg.Check.Target + ": failed"}
	})
	c := schedCheck("leaky", 10*time.Millisecond)
	c.Type, c.Target = config.TypeHTTP, "http://probe:hunter2@127.0.0.1:9/heartbeat/1"
	h.apply(c)
	h.start()
	testkit.Eventually(t, 10*time.Second, "three runs", func() bool { return len(h.status("leaky").History) >= 3 })
	sh := h.r.StatusHandler()
	_, js := get(t, sh, "/status", "")
	_, page := get(t, sh, "/status", "text/html")
	for _, body := range []string{js, page} {
		if strings.Contains(body, "hunter2") {
			t.Errorf("the password reached /status:\n%s", body)
		}
	}
	if !strings.Contains(js, `"reason": "GET http://probe:xxxxx@127.0.0.1:9/heartbeat/1: failed"`) {
		t.Errorf("history lacks the redacted reason:\n%s", js)
	}
}

func TestStateText(t *testing.T) {
	cs := CheckStatus{FailureThreshold: 3, SuccessThreshold: 2}
	for _, tc := range []struct {
		s    SeriesStatus
		want string
	}{
		{SeriesStatus{}, "unknown, no runs yet"},
		{SeriesStatus{State: StateDown, Runs: 3, ConsecutiveFailures: 3}, "down, 3 of 3 failures"},
		{SeriesStatus{State: StateDown, Runs: 9, ConsecutiveFailures: 7}, "down, 7 failures in a row (threshold 3)"},
		{SeriesStatus{State: StateDown, Runs: 9, ConsecutiveSuccesses: 1}, "down, 1 of 2 successes to recover"},
		{SeriesStatus{State: StateUp, Runs: 9, ConsecutiveFailures: 1}, "up, 1 of 3 failures"},
		{SeriesStatus{State: StateUp, Runs: 9}, "up"},
	} {
		if got := stateText(tc.s, cs); got != tc.want {
			t.Errorf("stateText(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
