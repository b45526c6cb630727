//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// dashboardFile is the Grafana dashboard's JSON model, relative to the root.
const dashboardFile = "k8s/components/grafana-dashboard/heartbeat-dashboard.json"

// dashboardDatasource is the datasource variable every panel must use.
const dashboardDatasource = "${datasource}"

// noDataYet names the dashboard queries ("panel title/refId") whose data the
// e2e does not produce, and why. Every other query must return a series, and
// a query listed here that does return one fails too, so the list stays true.
var noDataYet = map[string]string{
	"Ring: success per peer/A":              "no mesh check in the e2e: mesh checks (heartbeat.mesh.role, heartbeat.mesh.peer) are not implemented yet",
	"Sweep: failure rate/A":                 "no mesh check in the e2e: mesh checks (heartbeat.mesh.role) are not implemented yet",
	"Incoming mesh probes per member/A":     "no mesh check in the e2e: heartbeat.mesh.probes.received is not implemented yet",
	"Members seen/A":                        "no mesh check in the e2e: probe.mesh.members is not implemented yet",
	"Distinct member views/A":               "no mesh check in the e2e: probe.mesh.view.hash is not implemented yet",
	"Certificate days left/A":               "the e2e's checks files have no TLS or HTTPS check, so no probe.tls.cert.expiry",
	"Sidecar drops/B":                       "the e2e never fills a sidecar's syslog queue, so heartbeat.alerts.dropped is never counted",
	"Collector export failures and queue/A": "no collector exporter fails in the e2e: otelcol_exporter_send_failed_* appear with the first failure",
	"Collector export failures and queue/B": "no collector sending queue fills in the e2e: otelcol_exporter_enqueue_failed_* appear with the first refusal",
}

// grafanaBuiltins are what Grafana substitutes for its own variables; the
// e2e's Prometheus scrapes every second, so a minute holds enough samples.
var grafanaBuiltins = map[string]string{
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "10m",
}

// dashboardModel is the part of Grafana's JSON model the test reads.
type dashboardModel struct {
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string           `json:"name"`
			Type       string           `json:"type"`
			Query      any              `json:"query"`
			Datasource *dashboardSource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type dashboardPanel struct {
	ID         int              `json:"id"`
	Type       string           `json:"type"`
	Title      string           `json:"title"`
	Datasource *dashboardSource `json:"datasource"`
	Targets    []struct {
		RefID        string           `json:"refId"`
		Expr         string           `json:"expr"`
		LegendFormat string           `json:"legendFormat"`
		Datasource   *dashboardSource `json:"datasource"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

type dashboardSource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// allPanels flattens rows into their panels.
func allPanels(ps []dashboardPanel) []dashboardPanel {
	var out []dashboardPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// grafanaDashboard checks the dashboard's model (unique panel ids, the
// datasource variable on every panel and query), resolves its variables
// against the e2e's Prometheus as Grafana would with "All" selected, then
// runs every panel's query with them substituted and wants a series from
// each, except those named in noDataYet.
func grafanaDashboard(ctx context.Context, e *env) (string, error) {
	raw, err := os.ReadFile(filepath.Join(e.s.opts.Root, dashboardFile))
	if err != nil {
		return "", err
	}
	var d dashboardModel
	if err := json.Unmarshal(raw, &d); err != nil {
		return "", fmt.Errorf("%s: %w", dashboardFile, err)
	}
	panels := allPanels(d.Panels)
	if err := checkDashboardModel(panels); err != nil {
		return "", fmt.Errorf("%s: %w", dashboardFile, err)
	}
	// Uploads, so the payload server's request body histogram has data.
	for range 3 {
		if err := postPayload(ctx, e.sidecar[PodB]+"/heartbeat/16", 4096); err != nil {
			return "", err
		}
	}

	vars := map[string]string{}
	var resolved []string
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			if v.Query != "prometheus" {
				return "", fmt.Errorf("%s: variable %s: query %v, want prometheus", dashboardFile, v.Name, v.Query)
			}
		case "query":
			q, _ := v.Query.(string)
			if v.Datasource == nil || v.Datasource.UID != dashboardDatasource {
				return "", fmt.Errorf("%s: variable %s does not use %s", dashboardFile, v.Name, dashboardDatasource)
			}
			var vals []string
			// Variables chain ($pod's query names $namespace): wait for each.
			err := Poll(ctx, 30*time.Second, 500*time.Millisecond, func(ctx context.Context) error {
				got, err := labelValues(ctx, e.prom, q, vars)
				if err == nil && len(got) == 0 {
					err = fmt.Errorf("variable %s: %s has no values", v.Name, q)
				}
				vals = got
				return err
			})
			if err != nil {
				return "", err
			}
			for i, s := range vals {
				vals[i] = regexp.QuoteMeta(s)
			}
			// Grafana's multi-value "All" in a regex matcher.
			vars[v.Name] = "(" + strings.Join(vals, "|") + ")"
			resolved = append(resolved, fmt.Sprintf("$%s=%s", v.Name, strings.Join(vals, ",")))
		default:
			return "", fmt.Errorf("%s: variable %s has type %q, which the test cannot substitute", dashboardFile, v.Name, v.Type)
		}
	}

	type query struct {
		name, expr string
		legend     []string // the labels the legend shows
	}
	var queries []query
	for _, p := range panels {
		for _, t := range p.Targets {
			expr, err := substitute(t.Expr, vars)
			if err != nil {
				return "", fmt.Errorf("panel %q/%s: %w", p.Title, t.RefID, err)
			}
			var legend []string
			for _, m := range legendLabel.FindAllStringSubmatch(t.LegendFormat, -1) {
				legend = append(legend, m[1])
			}
			queries = append(queries, query{p.Title + "/" + t.RefID, expr, legend})
		}
	}
	for name := range noDataYet {
		if !slices.ContainsFunc(queries, func(q query) bool { return q.name == name }) {
			return "", fmt.Errorf("noDataYet names %q, which is no query of the dashboard", name)
		}
	}
	// A query Prometheus rejects fails at once; missing data is waited for.
	for _, q := range queries {
		if _, err := PromQuery(ctx, e.prom, q.expr); err != nil {
			return "", fmt.Errorf("panel %s: %w", q.name, err)
		}
	}
	var have []string
	err = Poll(ctx, 60*time.Second, time.Second, func(ctx context.Context) error {
		have = have[:0]
		var errs []error
		for _, q := range queries {
			got, err := PromQuery(ctx, e.prom, q.expr)
			if err != nil {
				return err
			}
			why, exempt := noDataYet[q.name]
			switch {
			case len(got) == 0 && !exempt:
				errs = append(errs, fmt.Errorf("panel %s: no series from %s", q.name, q.expr))
			case len(got) > 0 && exempt:
				errs = append(errs, fmt.Errorf("panel %s returns %d series now (%v): take it out of noDataYet (%q)", q.name, len(got), got[0], why))
			case len(got) > 0:
				have = append(have, fmt.Sprintf("%s: %d", q.name, len(got)))
			}
			// A label the legend names but the query aggregated away shows
			// as an empty legend in Grafana.
			for _, s := range got {
				for _, l := range q.legend {
					if s.Labels[l] == "" {
						errs = append(errs, fmt.Errorf("panel %s: legend names {{%s}}, series %v has no such label", q.name, l, s))
					}
				}
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return "", err
	}
	var absent []string
	for name := range noDataYet {
		absent = append(absent, name)
	}
	slices.Sort(absent)
	return fmt.Sprintf("%d panels, %d queries with %s; series per query: %s; no data yet, as listed: %s",
		len(panels), len(queries), strings.Join(resolved, " "), strings.Join(have, ", "), strings.Join(absent, ", ")), nil
}

// checkDashboardModel: unique panel ids, and the datasource variable on
// every panel that queries and on each of its queries.
func checkDashboardModel(panels []dashboardPanel) error {
	var errs []error
	ids := map[int]string{}
	for _, p := range panels {
		if p.ID == 0 {
			errs = append(errs, fmt.Errorf("panel %q has no id", p.Title))
		} else if other, dup := ids[p.ID]; dup {
			errs = append(errs, fmt.Errorf("panels %q and %q share id %d", other, p.Title, p.ID))
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != dashboardDatasource || p.Datasource.Type != "prometheus" {
			errs = append(errs, fmt.Errorf("panel %q: datasource %+v, want the prometheus %s", p.Title, p.Datasource, dashboardDatasource))
		}
		if len(p.Targets) == 0 {
			errs = append(errs, fmt.Errorf("panel %q has no query", p.Title))
		}
		for _, t := range p.Targets {
			if t.Datasource == nil || t.Datasource.UID != dashboardDatasource {
				errs = append(errs, fmt.Errorf("panel %q/%s: datasource %+v, want %s", p.Title, t.RefID, t.Datasource, dashboardDatasource))
			}
			if t.RefID == "" || strings.TrimSpace(t.Expr) == "" {
				errs = append(errs, fmt.Errorf("panel %q: a query without refId or expr", p.Title))
			}
		}
	}
	return errors.Join(errs...)
}

// legendLabel is {{label}} in a query's legend format.
var legendLabel = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// grafanaVar is $name or ${name} in a query.
var grafanaVar = regexp.MustCompile(`\$(?:\{(\w+)\}|(\w+))`)

// substitute replaces the dashboard's and Grafana's variables in expr; a
// variable that is neither is an error (Grafana would leave it as text).
func substitute(expr string, vars map[string]string) (string, error) {
	var unknown []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		if v, ok := vars[name]; ok {
			return v
		}
		if v, ok := grafanaBuiltins[name]; ok {
			return v
		}
		unknown = append(unknown, m)
		return m
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("unknown variables %v in %s", unknown, expr)
	}
	return out, nil
}

// labelValuesQuery is Grafana's Prometheus variable query label_values(selector, label).
var labelValuesQuery = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// labelValues answers a label_values() variable query as Grafana does,
// through Prometheus' label values API.
func labelValues(ctx context.Context, prom, q string, vars map[string]string) ([]string, error) {
	m := labelValuesQuery.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return nil, fmt.Errorf("variable query %q is not label_values(selector, label)", q)
	}
	sel, err := substitute(m[1], vars)
	if err != nil {
		return nil, err
	}
	var r struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	u := fmt.Sprintf("%s/api/v1/label/%s/values?match[]=%s", prom, m[2], url.QueryEscape(sel))
	if err := GetJSON(ctx, u, &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("GET %s: status %s", u, r.Status)
	}
	return r.Data, nil
}

// postPayload uploads n bytes, as a client measuring upload throughput does.
func postPayload(ctx context.Context, u string, n int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(strings.Repeat("x", n)))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", u, resp.Status)
	}
	return nil
}
