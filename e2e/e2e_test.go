//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// Outage is how long the collector stays down in the outage assertion.
const Outage = 20 * time.Second

// RetryWindow is how long the sidecars' OTLP exporters keep retrying one
// export (OTEL_EXPORTER_OTLP_TIMEOUT's default).
const RetryWindow = 10 * time.Second

func TestMain(m *testing.M) {
	RunHelperIfRequested()
	os.Exit(m.Run())
}

// summary collects one row per assertion and prints them as a table at the
// end of the run, whatever the outcome.
type summary struct {
	mu   sync.Mutex
	rows [][4]string
}

func (s *summary) add(name string, ok bool, took time.Duration, detail string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res := "PASS"
	if !ok {
		res = "FAIL"
	}
	s.rows = append(s.rows, [4]string{name, res, took.Round(100 * time.Millisecond).String(), detail})
}

func (s *summary) print(w io.Writer, total time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(w, "\n=== e2e summary (%v) ===\n", total.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ASSERTION\tRESULT\tTIME\tSAW")
	for _, r := range s.rows {
		detail := strings.ReplaceAll(r[3], "\n", "; ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], detail)
	}
	tw.Flush()
}

type env struct {
	s *Stack
	// alertTrace is the trace id of the failing run in the ALERT lines.
	alertTrace string
	// probe is a complete trace of A's probe of B (assertion 3).
	probe   *probeSpans
	prom    string
	jaeger  string
	sidecar map[string]string // pod -> base URL
}

func TestPipeline(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"bin/heartbeat", "bin/otelcol-heartbeat", "bin/jaeger"} {
		if _, err := os.Stat(filepath.Join(root, bin)); err != nil {
			t.Fatalf("%s missing (run make e2e, which builds it): %v", bin, err)
		}
	}
	began := time.Now()
	sum := &summary{}
	t.Cleanup(func() { sum.print(os.Stdout, time.Since(began)) })

	// HEARTBEAT_E2E_INFRA_ONLY=1 checks the pipeline without the sidecars.
	infraOnly := os.Getenv("HEARTBEAT_E2E_INFRA_ONLY") != ""
	ctx := t.Context()
	t0 := time.Now()
	s, err := Start(ctx, Options{Root: root, Work: filepath.Join(root, "e2e/work/e2e"), Log: os.Stdout, NoSidecars: infraOnly})
	if err != nil {
		sum.add("stack start", false, time.Since(t0), err.Error())
		t.Fatal(err)
	}
	var names []string
	for _, p := range s.Procs() {
		names = append(names, p.Name)
	}
	sum.add("stack start", true, time.Since(t0), strings.Join(names, ", ")+" ready")
	t.Cleanup(s.Stop)
	e := &env{
		s:      s,
		prom:   "http://" + addr(s.Ports.Prometheus),
		jaeger: "http://" + addr(s.Ports.JaegerQuery),
		sidecar: map[string]string{
			PodA: "http://" + addr(s.Ports.SidecarA),
			PodB: "http://" + addr(s.Ports.SidecarB),
		},
	}
	run := func(name string, f func(context.Context, *env) (string, error)) {
		t.Run(name, func(t *testing.T) {
			if infraOnly && name != "0-synthetic-otlp" {
				t.Skip("HEARTBEAT_E2E_INFRA_ONLY is set")
			}
			start := time.Now()
			detail, err := f(t.Context(), e)
			var skip *skipError
			if errors.As(err, &skip) {
				sum.add(name+" (skipped)", true, time.Since(start), skip.reason)
				t.Skip(skip.reason)
			}
			sum.add(name, err == nil, time.Since(start), errString(err, detail))
			if err != nil {
				t.Fatal(err)
			}
			t.Log(detail)
		})
	}
	run("0-synthetic-otlp", synthetic)
	run("1-syslog-alert", syslogAlert)
	run("2-prometheus", prometheus)
	run("9-grafana-dashboard", grafanaDashboard)
	run("3-jaeger-trace", jaegerTrace)
	run("5-fluentbit-otlp", fluentBitOTLP)
	run("6-fluentbit-tail", fluentBitTail)
	run("7-jaeger-ui", jaegerUI)
	run("4-collector-outage", outage)
	// Last: it restarts Jaeger, whose storage is in memory.
	run("8-collector-restart", collectorRestart)
}

// skipError is an assertion that cannot run here: a part is missing that
// CI always has. Under CI=true it is a failure instead (see unavailable).
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// unavailable reports a missing part: a failure under CI=true, where
// make e2e provides everything, and a skip with the reason elsewhere.
func unavailable(reason string) error {
	if os.Getenv("CI") == "true" {
		return errors.New(reason + " (CI=true: make e2e must provide it)")
	}
	return &skipError{reason: reason}
}

func errString(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func postJSON(ctx context.Context, u, body string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", u, resp.Status, b)
	}
	return nil
}

// synthetic sends one log record, one gauge and one span over OTLP/HTTP
// JSON, as telemetrygen would, and finds each in its backend. It proves
// the collector config and every backend independently of the sidecar.
func synthetic(ctx context.Context, e *env) (string, error) {
	run := randHex(4)
	traceID, spanID := randHex(16), randHex(8)
	now := time.Now().UnixNano()
	check := "synthetic-" + run
	res := `{"attributes":[{"key":"service.name","value":{"stringValue":"e2e-synthetic"}},{"key":"host.name","value":{"stringValue":"e2e-host"}}]}`
	base := "http://" + addr(e.s.Ports.OTLPHTTP)
	if err := postJSON(ctx, base+"/v1/logs", fmt.Sprintf(`{"resourceLogs":[{"resource":%s,"scopeLogs":[{"scope":{"name":"e2e"},"logRecords":[{"timeUnixNano":"%d","severityNumber":19,"severityText":"ALERT","body":{"stringValue":"ALERT check=%s reason=synthetic trace_id=%s"},"traceId":"%s","spanId":"%s","attributes":[{"key":"check.name","value":{"stringValue":"%s"}}]}]}]}]}`,
		res, now, check, traceID, traceID, spanID, check)); err != nil {
		return "", err
	}
	if err := postJSON(ctx, base+"/v1/metrics", fmt.Sprintf(`{"resourceMetrics":[{"resource":%s,"scopeMetrics":[{"scope":{"name":"e2e"},"metrics":[{"name":"e2e.synthetic.value","gauge":{"dataPoints":[{"timeUnixNano":"%d","asInt":"42","attributes":[{"key":"run.id","value":{"stringValue":"%s"}}]}]}}]}]}]}`,
		res, now, run)); err != nil {
		return "", err
	}
	if err := postJSON(ctx, base+"/v1/traces", fmt.Sprintf(`{"resourceSpans":[{"resource":%s,"scopeSpans":[{"scope":{"name":"e2e"},"spans":[{"traceId":"%s","spanId":"%s","name":"synthetic %s","kind":1,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`,
		res, traceID, spanID, run, now-int64(time.Millisecond), now)); err != nil {
		return "", err
	}
	var saw []string
	err := Poll(ctx, 60*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		saw = saw[:0]
		lines, err := SyslogLines(e.s.SyslogFile, "input=collector", check)
		if err != nil || len(lines) == 0 {
			return fmt.Errorf("syslog: no collector line for %s yet (%v)", check, err)
		}
		l := lines[0]
		for _, want := range []string{"severity=alert", "facility=user", "app=e2e-synthetic", "host=e2e-host", `trace_id="` + traceID + `"`, `check="` + check + `"`, "msg=ALERT check=" + check} {
			if !strings.Contains(l, want) {
				return fmt.Errorf("syslog line lacks %q: %s", want, l)
			}
		}
		saw = append(saw, "syslog: "+l[strings.Index(l, "input="):])
		if e.s.NoFluentBit == "" {
			r, err := syntheticRecord(e.s.LogStoreFile, traceID, check, now)
			if err != nil {
				return err
			}
			saw = append(saw, "fluent bit → log store: "+r)
		}
		for _, path := range []struct{ name, sel string }{{"scrape", `job="otelcol"`}, {"remote write", `job="e2e-synthetic"`}} {
			q := fmt.Sprintf(`e2e_synthetic_value{%s,run_id=%q}`, path.sel, run)
			got, err := PromQuery(ctx, e.prom, q)
			if err != nil {
				return err
			}
			if len(got) != 1 || got[0].Value != 42 || got[0].Labels["host_name"] != "e2e-host" {
				return fmt.Errorf("prometheus %s: %s = %v, want one series = 42 with host_name", path.name, q, got)
			}
			saw = append(saw, "prometheus "+path.name+": "+q+" = 42")
		}
		var tr struct {
			Data []JaegerTrace `json:"data"`
		}
		if err := GetJSON(ctx, e.jaeger+"/api/traces/"+traceID, &tr); err != nil {
			return fmt.Errorf("jaeger: %w", err)
		}
		if len(tr.Data) != 1 || len(tr.Data[0].Spans) != 1 || tr.Data[0].Spans[0].OperationName != "synthetic "+run {
			return fmt.Errorf("jaeger: trace %s = %+v", traceID, tr.Data)
		}
		saw = append(saw, "jaeger: trace "+traceID+" span 'synthetic "+run+"'")
		return nil
	})
	return strings.Join(saw, "\n"), err
}

var (
	traceIDRe = regexp.MustCompile(`trace_id=([0-9a-f]{32})`)
	reasonRe  = regexp.MustCompile(`reason=("(?:[^"\\]|\\.)*"|\S+)`)
)

// syslogAlert: rsyslog's file holds the failing check's ALERT twice — via
// the collector (RFC 5424 over TCP) and straight from sidecar A (UDP) —
// with check name, reason and the failing run's trace id.
func syslogAlert(ctx context.Context, e *env) (string, error) {
	var detail string
	err := Poll(ctx, 60*time.Second, 250*time.Millisecond, func(context.Context) error {
		direct, err := SyslogLines(e.s.SyslogFile, "input=sidecar", "severity=alert", "ALERT check="+CheckClosed)
		if err != nil || len(direct) == 0 {
			return fmt.Errorf("no direct ALERT line from sidecar A for %s yet (%v)", CheckClosed, err)
		}
		viaCol, err := SyslogLines(e.s.SyslogFile, "input=collector", "severity=alert", "ALERT check="+CheckClosed)
		if err != nil || len(viaCol) == 0 {
			return fmt.Errorf("direct line seen (%s) but none via the collector yet (%v)", direct[0], err)
		}
		d, c := direct[0], viaCol[0]
		for _, l := range []string{d, c} {
			if !reasonRe.MatchString(l) || !traceIDRe.MatchString(l) {
				return fmt.Errorf("ALERT line lacks reason= or trace_id=: %s", l)
			}
		}
		for _, want := range []string{"app=" + ServiceName, "host=" + PodA, `check="` + CheckClosed + `"`} {
			if !strings.Contains(c, want) {
				return fmt.Errorf("collector line lacks %q: %s", want, c)
			}
		}
		tid := traceIDRe.FindStringSubmatch(d)[1]
		if !strings.Contains(c, tid) {
			return fmt.Errorf("direct line has trace id %s, collector line does not: %s", tid, c)
		}
		e.alertTrace = tid
		detail = fmt.Sprintf("direct: %s\nvia collector: %s\nsame trace id %s, reason %s",
			d[strings.Index(d, "input="):], c[strings.Index(c, "input="):], tid, reasonRe.FindStringSubmatch(d)[1])
		return nil
	})
	return detail, err
}

// prometheus: probe_success is 1 for the healthy checks and 0 for the
// failing one, scraped and remote-written, and B's payload server histogram
// is there, all labelled with the sidecars' resource attributes.
func prometheus(ctx context.Context, e *env) (string, error) {
	want := map[string]float64{CheckPeer: 1, CheckTCPUp: 1, CheckClosed: 0}
	var saw []string
	err := Poll(ctx, 60*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
		saw = saw[:0]
		for _, path := range []struct{ name, sel string }{{"scrape", `job="otelcol"`}, {"remote write", `job!="otelcol"`}} {
			q := fmt.Sprintf(`probe_success{%s,k8s_pod_name=%q}`, path.sel, PodA)
			got, err := PromQuery(ctx, e.prom, q)
			if err != nil {
				return err
			}
			if len(got) == 0 {
				if r, _ := PromQuery(ctx, e.prom, `{__name__=~"probe_success.+"}`); len(r) > 0 {
					return fmt.Errorf("%s: no probe_success but %s: the gauge's unit \"1\" makes the collector append _ratio; give probe.success no unit", path.name, r[0].Labels["__name__"])
				}
				return fmt.Errorf("%s: %s: no series yet", path.name, q)
			}
			vals := map[string]float64{}
			for _, s := range got {
				vals[s.Labels["check_name"]] = s.Value
				for k, v := range map[string]string{"service_name": ServiceName, "k8s_namespace_name": Namespace, "deployment_environment_name": Namespace, "k8s_node_name": "e2e-node"} {
					if s.Labels[k] != v {
						return fmt.Errorf("%s: %v: label %s = %q, want %q", path.name, s, k, s.Labels[k], v)
					}
				}
			}
			for c, v := range want {
				if got, ok := vals[c]; !ok || got != v {
					return fmt.Errorf("%s: probe_success by check = %v, want %v", path.name, vals, want)
				}
			}
			saw = append(saw, fmt.Sprintf("%s probe_success %v", path.name, vals))
		}
		q := fmt.Sprintf(`sum by (http_route, k8s_pod_name) (http_server_request_duration_seconds_count{job="otelcol",k8s_pod_name=%q})`, PodB)
		got, err := PromQuery(ctx, e.prom, q)
		if err != nil {
			return err
		}
		if len(got) == 0 || got[0].Value == 0 {
			return fmt.Errorf("%s: %v", q, got)
		}
		routes := []string{}
		for _, s := range got {
			routes = append(routes, fmt.Sprintf("%s=%g", s.Labels["http_route"], s.Value))
		}
		if !slices.ContainsFunc(got, func(s Sample) bool { return s.Labels["http_route"] == "/heartbeat/{size}" }) {
			return fmt.Errorf("B's histogram has no http_route=\"/heartbeat/{size}\": %v", routes)
		}
		p99, err := PromQuery(ctx, e.prom, fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (http_server_request_duration_seconds_bucket{job="otelcol",k8s_pod_name=%q}))`, PodB))
		if err != nil {
			return err
		}
		p99s := "n/a"
		if len(p99) == 1 {
			p99s = fmt.Sprintf("%.2gs", p99[0].Value)
		}
		saw = append(saw, fmt.Sprintf("B http_server_request_duration_seconds count by route %v, p99 %s", routes, p99s))
		return nil
	})
	return strings.Join(saw, "\n"), err
}

// jaegerTrace: one trace holds A's probe span of B and B's server span
// below it, with the probe's phase timings.
func jaegerTrace(ctx context.Context, e *env) (string, error) {
	var detail string
	err := Poll(ctx, 60*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
		traces, err := JaegerTraces(ctx, e.jaeger, ServiceName, "probe "+CheckPeer, 20)
		if err != nil {
			return err
		}
		if len(traces) == 0 {
			return fmt.Errorf("no trace with operation %q yet", "probe "+CheckPeer)
		}
		var last error
		for _, tr := range traces {
			if e.probe, detail, last = probeTrace(tr); last == nil {
				break
			}
		}
		if last != nil {
			return fmt.Errorf("%d traces, none complete; last: %w", len(traces), last)
		}
		if e.alertTrace == "" {
			return nil // assertion 1 failed; it says why
		}
		// The trace id in the ALERT line leads to the failing run.
		var tr struct {
			Data []JaegerTrace `json:"data"`
		}
		if err := GetJSON(ctx, e.jaeger+"/api/traces/"+e.alertTrace, &tr); err != nil {
			return fmt.Errorf("ALERT trace %s: %w", e.alertTrace, err)
		}
		for _, t := range tr.Data {
			for _, sp := range t.Spans {
				if et, _ := Tag(sp.Tags, "error.type"); sp.OperationName == "probe "+CheckClosed && et == "connection_refused" {
					detail += fmt.Sprintf("\nALERT's trace %s: %q with error.type=%s", e.alertTrace, sp.OperationName, et)
					return nil
				}
			}
		}
		return fmt.Errorf("ALERT trace %s has no %q span with error.type=connection_refused: %+v", e.alertTrace, "probe "+CheckClosed, tr.Data)
	})
	return detail, err
}

// probeSpans are the span ids of one complete probe trace.
type probeSpans struct {
	TraceID, Probe, Server string
	ServerName             string
	// Phases maps the probe span's child spans' ids to their names.
	Phases map[string]string
}

// probeTrace checks one trace for A's probe span, its phases and B's server span.
func probeTrace(tr JaegerTrace) (*probeSpans, string, error) {
	pod := func(sp JaegerSpan) string { v, _ := Tag(tr.Processes[sp.ProcessID].Tags, "k8s.pod.name"); return v }
	byID := map[string]JaegerSpan{}
	for _, sp := range tr.Spans {
		byID[sp.SpanID] = sp
	}
	var probe *JaegerSpan
	for i, sp := range tr.Spans {
		if sp.OperationName == "probe "+CheckPeer && pod(sp) == PodA {
			probe = &tr.Spans[i]
		}
	}
	if probe == nil {
		return nil, "", fmt.Errorf("trace %s: no %q span from %s", tr.TraceID, "probe "+CheckPeer, PodA)
	}
	var server *JaegerSpan
	var phases []string
	ids := &probeSpans{TraceID: tr.TraceID, Probe: probe.SpanID, Phases: map[string]string{}}
	for i, sp := range tr.Spans {
		if pod(sp) == PodA && sp.Parent() == probe.SpanID {
			phases = append(phases, fmt.Sprintf("%s %dµs", sp.OperationName, sp.Duration))
			ids.Phases[sp.SpanID] = sp.OperationName
		}
		if kind, _ := Tag(sp.Tags, "span.kind"); kind == "server" && pod(sp) == PodB {
			// The server span must descend from the probe span.
			for p := sp.Parent(); p != ""; p = byID[p].Parent() {
				if p == probe.SpanID {
					server = &tr.Spans[i]
					break
				}
			}
		}
	}
	for _, l := range probe.Logs {
		if name, ok := Tag(l.Fields, "event"); ok {
			phases = append(phases, "event "+name)
		}
	}
	if server == nil {
		return nil, "", fmt.Errorf("trace %s: no server span from %s below A's probe span", tr.TraceID, PodB)
	}
	if len(phases) == 0 {
		return nil, "", fmt.Errorf("trace %s: probe span has no phase child spans or events", tr.TraceID)
	}
	ids.Server, ids.ServerName = server.SpanID, server.OperationName
	return ids, fmt.Sprintf("trace %s: %q (A, %dµs) with phases [%s] → %q (B, server, %dµs)",
		tr.TraceID, probe.OperationName, probe.Duration, strings.Join(phases, ", "), server.OperationName, server.Duration), nil
}

// outage kills the collector for Outage, checks that both sidecars keep
// serving and checking meanwhile, restarts it, and checks that nothing run
// during the outage is missing afterwards: the run counters in Prometheus
// cover every run /status counted, and Jaeger has probe traces from inside
// the outage (held and retried by the sidecars' exporters).
func outage(ctx context.Context, e *env) (string, error) {
	pods := []string{PodA, PodB}
	before := map[string]map[string]CheckStatus{}
	for _, pod := range pods {
		st, err := SidecarStatus(ctx, e.sidecar[pod])
		if err != nil {
			return "", err
		}
		before[pod] = st
	}
	if err := e.s.KillCollector(); err != nil {
		return "", err
	}
	killed := time.Now()
	if c, err := net.DialTimeout("tcp", addr(e.s.Ports.OTLPGRPC), time.Second); err == nil {
		c.Close()
		return "", errors.New("collector port still accepts connections after SIGKILL")
	}

	// While it is down, fetch payloads and /status from both sidecars.
	var requests, failures int
	var slowest time.Duration
	var firstErr error
	tick := time.NewTicker(250 * time.Millisecond)
	end := time.NewTimer(Outage)
	client := &http.Client{Timeout: 2 * time.Second}
loop:
	for {
		for _, pod := range pods {
			t0 := time.Now()
			err := fetchPayload(ctx, client, e.sidecar[pod]+"/heartbeat/65536", 65536)
			requests++
			slowest = max(slowest, time.Since(t0))
			if err != nil {
				failures++
				firstErr = cmpErr(firstErr, fmt.Errorf("%s during outage: %w", pod, err))
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-end.C:
			break loop
		case <-tick.C:
		}
	}
	tick.Stop()
	during := map[string]map[string]CheckStatus{}
	minRuns := uint64(Outage/CheckInterval) / 2
	var runs []string
	for _, pod := range pods {
		st, err := SidecarStatus(ctx, e.sidecar[pod])
		if err != nil {
			return "", fmt.Errorf("%s /status during outage: %w", pod, err)
		}
		during[pod] = st
		for name, c := range st {
			d := c.Runs - before[pod][name].Runs
			runs = append(runs, fmt.Sprintf("%s/%s +%d", pod, name, d))
			if d < minRuns {
				return "", fmt.Errorf("%s check %s ran %d times during the %v outage, want ≥ %d", pod, name, d, Outage, minRuns)
			}
		}
	}
	slices.Sort(runs)
	if failures > 0 {
		return "", fmt.Errorf("%d of %d payload requests failed during the outage; first: %w", failures, requests, firstErr)
	}

	t0 := time.Now()
	if err := e.s.StartCollector(ctx); err != nil {
		return "", fmt.Errorf("restarting collector: %w", err)
	}
	restarted := time.Now()
	restartTook := restarted.Sub(t0)

	// Every run /status counted by the end of the outage reaches Prometheus.
	var counted string
	err := Poll(ctx, 90*time.Second, time.Second, func(ctx context.Context) error {
		got, err := PromQuery(ctx, e.prom, `sum by (k8s_pod_name, check_name) (probe_runs_total{job="otelcol",outcome!="skipped"})`)
		if err != nil {
			return err
		}
		have := map[string]float64{}
		for _, s := range got {
			have[s.Labels["k8s_pod_name"]+"/"+s.Labels["check_name"]] = s.Value
		}
		var parts []string
		for _, pod := range pods {
			for name, c := range during[pod] {
				k := pod + "/" + name
				if have[k] < float64(c.Runs) {
					return fmt.Errorf("probe_runs_total for %s = %g, /status counted %d runs by the end of the outage", k, have[k], c.Runs)
				}
				parts = append(parts, fmt.Sprintf("%s %g≥%d", k, have[k], c.Runs))
			}
		}
		slices.Sort(parts)
		counted = strings.Join(parts, ", ")
		return nil
	})
	if err != nil {
		return "", err
	}
	recovered := time.Since(restarted)

	// Spans are not cumulative like the counters: the sidecars' exporters
	// hold and retry them for RetryWindow (OTEL_EXPORTER_OTLP_TIMEOUT), then
	// drop and count them (heartbeat.telemetry.export.failures). So the hole
	// in each check's probe spans may cover the outage, but no more than the
	// outage plus that window plus the one check interval between the runs
	// on either side of it; and export must resume by itself.
	maxGap := Outage + RetryWindow + CheckInterval + CheckInterval/10
	var traced string
	err = Poll(ctx, 90*time.Second, time.Second, func(ctx context.Context) error {
		var parts []string
		for pod, names := range map[string][]string{PodA: {CheckPeer, CheckClosed, CheckTCPUp}, PodB: {CheckPeerA}} {
			for _, name := range names {
				traces, err := JaegerTraces(ctx, e.jaeger, ServiceName, "probe "+name, 1000)
				if err != nil {
					return err
				}
				var starts []time.Time
				for _, tr := range traces {
					for _, sp := range tr.Spans {
						if v, _ := Tag(tr.Processes[sp.ProcessID].Tags, "k8s.pod.name"); sp.OperationName == "probe "+name && v == pod {
							starts = append(starts, time.UnixMicro(sp.StartTime))
						}
					}
				}
				slices.SortFunc(starts, time.Time.Compare)
				from, until := killed.Add(-RetryWindow), restarted.Add(RetryWindow)
				var gap time.Duration
				var inOutage int
				var prev time.Time
				for _, st := range starts {
					if st.Before(from) {
						prev = st
						continue
					}
					if !prev.IsZero() {
						gap = max(gap, st.Sub(prev))
					}
					if st.After(killed) && st.Before(restarted) {
						inOutage++
					}
					prev = st
					if st.After(until) {
						break
					}
				}
				if prev.Before(until) {
					return fmt.Errorf("%s %q: no span yet from after the restart plus %v", pod, "probe "+name, RetryWindow)
				}
				if gap > maxGap {
					return fmt.Errorf("%s %q: %v without spans around the %v outage, more than %v", pod, "probe "+name, gap.Round(time.Millisecond), Outage, maxGap)
				}
				parts = append(parts, fmt.Sprintf("%s/%s longest gap %v, %d spans from inside the outage", pod, name, gap.Round(100*time.Millisecond), inOutage))
			}
		}
		slices.Sort(parts)
		traced = "probe spans in Jaeger: " + strings.Join(parts, ", ")
		return nil
	})
	if err != nil {
		return "", err
	}
	// The sidecars report what their exporters dropped; the soak reads the same series.
	if got, err := PromQuery(ctx, e.prom, `sum by (__name__, k8s_pod_name, signal) ({__name__=~"heartbeat_telemetry_export_(dropped|failures).*",job="otelcol"})`); err == nil && len(got) > 0 {
		var parts []string
		for _, s := range got {
			parts = append(parts, fmt.Sprintf("%s{%s/%s}=%g", s.Labels["__name__"], s.Labels["k8s_pod_name"], s.Labels["signal"], s.Value))
		}
		slices.Sort(parts)
		traced += "; sidecars' export counters: " + strings.Join(parts, ", ")
	}
	return fmt.Sprintf("collector down %v (restart took %v); %d payload requests during outage, 0 failed, slowest %v; runs during outage: %s; "+
		"Prometheus caught up %v after restart: %s; %s",
		restarted.Sub(killed).Round(100*time.Millisecond), restartTook.Round(100*time.Millisecond), requests, slowest.Round(time.Millisecond),
		strings.Join(runs, ", "), recovered.Round(100*time.Millisecond), counted, traced), nil
}

func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func fetchPayload(ctx context.Context, c *http.Client, u string, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || len(b) != n || !bytes.HasPrefix(b, []byte("0123456789ABCDEF")) {
		return fmt.Errorf("GET %s: %s, %d bytes", u, resp.Status, len(b))
	}
	return nil
}
