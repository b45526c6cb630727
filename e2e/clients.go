//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks"
)

// Poll calls f every interval until it returns nil or timeout passes, and
// returns f's last error then. It is how every assertion waits: on a
// condition, with a deadline, never a fixed sleep.
func Poll(ctx context.Context, timeout, interval time.Duration, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last error
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		// An attempt cut short by the deadline says less than the one before it.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("after %v: %w", timeout, last)
		case <-tick.C:
		}
	}
}

// GetJSON fetches url and decodes its JSON body into v.
func GetJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", u, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: decoding: %w", u, err)
	}
	return nil
}

// Sample is one series of a Prometheus instant vector.
type Sample struct {
	Labels map[string]string
	Value  float64
}

func (s Sample) String() string {
	return fmt.Sprintf("%s%v = %g", s.Labels["__name__"], s.Labels, s.Value)
}

// PromQuery runs an instant query against Prometheus' HTTP API.
func PromQuery(ctx context.Context, base, query string) ([]Sample, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := GetJSON(ctx, base+"/api/v1/query?query="+url.QueryEscape(query), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", query, r.Error)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, res := range r.Data.Result {
		s, _ := res.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %v: %w", query, res.Value[1], err)
		}
		out = append(out, Sample{Labels: res.Metric, Value: v})
	}
	return out, nil
}

// JaegerTrace is the part of Jaeger's /api/traces answer the test reads.
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
}

// JaegerSpan is one span of a JaegerTrace.
type JaegerSpan struct {
	SpanID        string `json:"spanID"`
	OperationName string `json:"operationName"`
	References    []struct {
		RefType string `json:"refType"`
		TraceID string `json:"traceID"`
		SpanID  string `json:"spanID"`
	} `json:"references"`
	StartTime int64       `json:"startTime"` // µs since the epoch
	Duration  int64       `json:"duration"`  // µs
	Tags      []JaegerTag `json:"tags"`
	Logs      []struct {
		Timestamp int64       `json:"timestamp"`
		Fields    []JaegerTag `json:"fields"`
	} `json:"logs"`
	ProcessID string `json:"processID"`
}

// JaegerProcess is the resource a span came from.
type JaegerProcess struct {
	ServiceName string      `json:"serviceName"`
	Tags        []JaegerTag `json:"tags"`
}

// JaegerTag is a key/value attribute.
type JaegerTag struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// Tag returns the value of key among tags as text.
func Tag(tags []JaegerTag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return fmt.Sprint(t.Value), true
		}
	}
	return "", false
}

// Parent returns the span's parent span id, or "".
func (s JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// JaegerTraces searches Jaeger for service's traces in the last hour.
func JaegerTraces(ctx context.Context, base, service, operation string, limit int) ([]JaegerTrace, error) {
	q := url.Values{"service": {service}, "limit": {strconv.Itoa(limit)}, "lookback": {"1h"}}
	if operation != "" {
		q.Set("operation", operation)
	}
	var r struct {
		Data   []JaegerTrace `json:"data"`
		Errors []any         `json:"errors"`
	}
	if err := GetJSON(ctx, base+"/api/traces?"+q.Encode(), &r); err != nil {
		return nil, err
	}
	if len(r.Errors) > 0 {
		return nil, fmt.Errorf("jaeger: %v", r.Errors)
	}
	return r.Data, nil
}

// SyslogLines returns the lines of the rsyslog output file that contain
// every one of subs.
func SyslogLines(path string, subs ...string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
next:
	for sc.Scan() {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue next
			}
		}
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

// CheckStatus is one entry of a sidecar's /status, the type the sidecar serves.
type CheckStatus = checks.CheckStatus

// SidecarStatus fetches a sidecar's /status as JSON.
func SidecarStatus(ctx context.Context, base string) (map[string]CheckStatus, error) {
	var r struct {
		Checks []CheckStatus `json:"checks"`
	}
	if err := GetJSON(ctx, base+"/status", &r); err != nil {
		return nil, err
	}
	out := make(map[string]CheckStatus, len(r.Checks))
	for _, c := range r.Checks {
		out[c.Name] = c
	}
	return out, nil
}
