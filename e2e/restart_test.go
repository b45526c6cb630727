//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
)

// collectorManifests run the collector in k8s/; the restart test holds the
// collector's stop to their shortest terminationGracePeriodSeconds.
var collectorManifests = []string{"k8s/collector-gateway/deployment.yaml", "k8s/overlays/agent/collector-agent.yaml"}

// collectorRestart: with Jaeger, Fluent Bit and Prometheus (remote write)
// down, a span and a log record sent to the collector wait in its
// persistent queues; SIGTERM stops the collector within the pods' grace
// period; restarted, and the backends back, the span, the record and the
// sidecars' probe spans from before the restart arrive. Jaeger restarts
// empty, so whatever it then holds from before came through the
// collector's queue on disk.
func collectorRestart(ctx context.Context, e *env) (string, error) {
	grace, err := collectorGrace(e.s.opts.Root)
	if err != nil {
		return "", err
	}
	logs := e.s.NoFluentBit == ""
	down := []string{"jaeger", "prometheus"}
	if logs {
		down = append(down, "fluent-bit")
	}
	for _, name := range down {
		if _, _, err := e.s.Terminate(name, 10*time.Second); err != nil {
			return "", err
		}
	}
	backendsDown := time.Now()

	run := randHex(4)
	traceID, spanID := randHex(16), randHex(8)
	check := "restart-" + run
	now := time.Now().UnixNano()
	res := `{"attributes":[{"key":"service.name","value":{"stringValue":"e2e-synthetic"}},{"key":"host.name","value":{"stringValue":"e2e-host"}}]}`
	base := "http://" + addr(e.s.Ports.OTLPHTTP)
	if err := postJSON(ctx, base+"/v1/traces", fmt.Sprintf(`{"resourceSpans":[{"resource":%s,"scopeSpans":[{"scope":{"name":"e2e"},"spans":[{"traceId":"%s","spanId":"%s","name":"restart %s","kind":1,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}]}]}]}`,
		res, traceID, spanID, run, now-int64(time.Millisecond), now)); err != nil {
		return "", err
	}
	if err := postJSON(ctx, base+"/v1/logs", fmt.Sprintf(`{"resourceLogs":[{"resource":%s,"scopeLogs":[{"scope":{"name":"e2e"},"logRecords":[{"timeUnixNano":"%d","severityNumber":19,"severityText":"ALERT","body":{"stringValue":"ALERT check=%s reason=restart trace_id=%s"},"traceId":"%s","spanId":"%s","attributes":[{"key":"check.name","value":{"stringValue":"%s"}}]}]}]}]}`,
		res, now, check, traceID, traceID, spanID, check)); err != nil {
		return "", err
	}

	// Queued: the exporters' queues hold what they could not send, and a
	// probe of B that A ran after the backends stopped is among it: the
	// traces queue grew by two batches (the collector's batch timeout is 1 s)
	// after /status showed that run.
	// Remote write's memory queue too: draining it is the slow part of a stop.
	exporters := []string{"otlp_grpc/jaeger", "prometheus_remote_write"}
	if logs {
		exporters = append(exporters, "otlp_http/fluentbit")
	}
	metrics := "http://" + addr(e.s.Ports.CollectorMetrics) + "/metrics"
	var queued string
	var probeRun time.Time
	var queueAtRun float64
	err = Poll(ctx, 30*time.Second, 250*time.Millisecond, func(ctx context.Context) error {
		sizes, err := queueSizes(ctx, metrics)
		if err != nil {
			return err
		}
		var parts []string
		for _, ex := range exporters {
			if sizes[ex] < 1 {
				return fmt.Errorf("exporter %s queue holds %g batches, want ≥ 1", ex, sizes[ex])
			}
			parts = append(parts, fmt.Sprintf("%s %g", ex, sizes[ex]))
		}
		queued = strings.Join(parts, ", ")
		if probeRun.IsZero() {
			st, err := SidecarStatus(ctx, e.sidecar[PodA])
			if err != nil {
				return err
			}
			if last := st[CheckPeer].LastRun; last.After(backendsDown) {
				probeRun, queueAtRun = last, sizes["otlp_grpc/jaeger"]
			}
			return fmt.Errorf("no %s run since the backends stopped yet", CheckPeer)
		}
		if q := sizes["otlp_grpc/jaeger"]; q < queueAtRun+2 {
			return fmt.Errorf("traces queue %g batches, want %g: two more after the %s run at %s", q, queueAtRun+2, CheckPeer, probeRun.Format(time.RFC3339Nano))
		}
		return nil
	})
	if err != nil {
		return "", err
	}

	took, killed, err := e.s.Terminate("collector", grace)
	if err != nil {
		return "", err
	}
	if killed {
		return "", fmt.Errorf("collector did not stop within the %v grace period of %s after SIGTERM: it was killed", grace, strings.Join(collectorManifests, ", "))
	}
	if err := e.s.StartCollector(ctx); err != nil {
		return "", fmt.Errorf("restarting the collector: %w", err)
	}
	if err := e.s.StartJaeger(ctx); err != nil {
		return "", fmt.Errorf("restarting jaeger: %w", err)
	}
	if err := e.s.startPrometheus(ctx); err != nil {
		return "", fmt.Errorf("restarting prometheus: %w", err)
	}
	if logs {
		if err := e.s.StartFluentBit(ctx); err != nil {
			return "", fmt.Errorf("restarting fluent bit: %w", err)
		}
	}
	backendsUp := time.Now()

	var saw []string
	err = Poll(ctx, 90*time.Second, time.Second, func(ctx context.Context) error {
		saw = saw[:0]
		var tr struct {
			Data []JaegerTrace `json:"data"`
		}
		if err := GetJSON(ctx, e.jaeger+"/api/traces/"+traceID, &tr); err != nil {
			return fmt.Errorf("jaeger: span sent before the restart: %w", err)
		}
		if len(tr.Data) != 1 || len(tr.Data[0].Spans) != 1 || tr.Data[0].Spans[0].OperationName != "restart "+run {
			return fmt.Errorf("jaeger: trace %s = %+v", traceID, tr.Data)
		}
		saw = append(saw, "span sent before the restart in Jaeger")
		// Probe spans A made while Jaeger was down, up to the run seen queued.
		traces, err := JaegerTraces(ctx, e.jaeger, ServiceName, "probe "+CheckPeer, 1000)
		if err != nil {
			return err
		}
		var early int
		for _, t := range traces {
			for _, sp := range t.Spans {
				st := time.UnixMicro(sp.StartTime)
				if sp.OperationName == "probe "+CheckPeer && st.After(backendsDown) && !st.After(probeRun.Add(100*time.Millisecond)) {
					early++
				}
			}
		}
		if early == 0 {
			return fmt.Errorf("jaeger: no %q span from between the backends' stop and %s (%d traces)", "probe "+CheckPeer, probeRun.Format(time.RFC3339Nano), len(traces))
		}
		saw = append(saw, fmt.Sprintf("%d sidecar probe spans from before the restart", early))
		if logs {
			r, err := syntheticRecord(e.s.LogStoreFile, traceID, check, now)
			if err != nil {
				return err
			}
			saw = append(saw, "log record sent before the restart in the log store: "+r)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("queued with backends down: %s; SIGTERM to exit %v (grace %v); delivered %v after the backends came back: %s",
		queued, took.Round(100*time.Millisecond), grace, time.Since(backendsUp).Round(100*time.Millisecond), strings.Join(saw, "; "))
	if !logs {
		return "", unavailable(e.s.NoFluentBit + "; traces part passed: " + detail)
	}
	return detail, nil
}

// collectorGrace is the shortest terminationGracePeriodSeconds of the
// collector's manifests.
func collectorGrace(root string) (time.Duration, error) {
	var grace time.Duration
	for _, rel := range collectorManifests {
		path := filepath.Join(root, rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		var m struct {
			Spec struct {
				Template struct {
					Spec struct {
						Grace *int `yaml:"terminationGracePeriodSeconds"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal(b, &m); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		g := 30 * time.Second // the API server's default
		if m.Spec.Template.Spec.Grace != nil {
			g = time.Duration(*m.Spec.Template.Spec.Grace) * time.Second
		}
		if grace == 0 || g < grace {
			grace = g
		}
	}
	return grace, nil
}

// queueSizes reads otelcol_exporter_queue_size by exporter from the
// collector's own metrics endpoint.
func queueSizes(ctx context.Context, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, "otelcol_exporter_queue_size{") {
			continue
		}
		_, rest, _ := strings.Cut(l, `exporter="`)
		name, _, _ := strings.Cut(rest, `"`)
		f := strings.Fields(l)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", u, l, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}
