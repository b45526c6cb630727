package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	lognoop "go.opentelemetry.io/otel/log/noop"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// run is what one env-table row gets to look at.
type run struct {
	r       *otlptest.Receiver
	p       *Providers
	logs    *testkit.Buffer // our slog output
	console *testkit.Buffer // console exporters' output
}

// resourceAttr returns a resource attribute of the first span received.
func (x run) resourceAttr(t *testing.T, key string) string {
	t.Helper()
	spans := x.r.WaitForSpans(t, 1, 5*time.Second)
	v, ok := spans[0].Resource.Attributes().Get(key)
	if !ok {
		t.Fatalf("resource has no %s: %v", key, spans[0].Resource.Attributes().AsRaw())
	}
	return v.AsString()
}

// arrived reports which signals reached the receiver, after a flush.
func (x run) arrived() (traces, metrics, logs bool) {
	for _, m := range x.r.Metrics() {
		if m.Name() == "test.histogram" {
			metrics = true
		}
	}
	return len(x.r.Spans()) > 0, metrics, len(x.r.Logs()) > 0
}

func (x run) wantArrived(t *testing.T, traces, metrics, logs bool) {
	t.Helper()
	gt, gm, gl := x.arrived()
	if gt != traces || gm != metrics || gl != logs {
		t.Errorf("arrived: traces %v metrics %v logs %v; want %v %v %v", gt, gm, gl, traces, metrics, logs)
	}
}

func (x run) wantLog(t *testing.T, substr string) {
	t.Helper()
	if !strings.Contains(x.logs.String(), substr) {
		t.Errorf("log output lacks %q:\n%s", substr, x.logs.String())
	}
}

// countSampledRoots records n root spans and returns how many were exported.
func (x run) countSampledRoots(t *testing.T, n int) int {
	t.Helper()
	x.r.Reset()
	tr := x.p.TracerProvider.Tracer("test")
	for range n {
		_, s := tr.Start(context.Background(), "root")
		s.End()
	}
	if err := flush(x.p); err != nil {
		t.Fatal(err)
	}
	return len(x.r.Spans())
}

// childOf records a span under a remote parent with the given sampled flag.
func (x run) childOf(t *testing.T, sampled bool) (parent trace.SpanContext) {
	t.Helper()
	x.r.Reset()
	flags := trace.TraceFlags(0)
	if sampled {
		flags = trace.FlagsSampled
	}
	parent = trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: flags,
		Remote:     true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
	_, s := x.p.TracerProvider.Tracer("test").Start(ctx, "child")
	s.End()
	if err := flush(x.p); err != nil {
		t.Fatal(err)
	}
	return parent
}

func isNoop(p *Providers) (traces, metrics, logs bool) {
	_, traces = p.TracerProvider.(tracenoop.TracerProvider)
	_, metrics = p.MeterProvider.(metricnoop.MeterProvider)
	_, logs = p.LoggerProvider.(lognoop.LoggerProvider)
	return
}

// TestSetupEnv has one row per environment variable Setup honours, each
// asserting the variable's effect on what crosses the wire.
func TestSetupEnv(t *testing.T) {
	const (
		grpcURL = "{grpc}" // replaced by the receiver's OTLP/gRPC URL
		httpURL = "{http}" // replaced by the receiver's OTLP/HTTP URL
	)
	tests := []struct {
		name    string
		env     map[string]string
		noFlush bool   // the row waits for periodic export itself
		wantErr string // Setup must fail with ErrInvalidConfig naming this
		check   func(t *testing.T, x run)
	}{
		{
			name: "no endpoint: export off, noop providers, one hint line",
			check: func(t *testing.T, x run) {
				if nt, nm, nl := isNoop(x.p); !nt || !nm || !nl {
					t.Errorf("noop providers: traces %v metrics %v logs %v, want all", nt, nm, nl)
				}
				x.wantLog(t, "telemetry export is off; set OTEL_EXPORTER_OTLP_ENDPOINT")
				if n := x.r.Requests(); n != 0 {
					t.Errorf("receiver got %d requests", n)
				}
			},
		},
		{
			name: "OTEL_EXPORTER_OTLP_ENDPOINT: all signals over gRPC, default service name",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL},
			check: func(t *testing.T, x run) {
				x.wantArrived(t, true, true, true)
				if got := x.resourceAttr(t, "service.name"); got != "heartbeat" {
					t.Errorf("service.name = %q, want heartbeat", got)
				}
				if got := x.resourceAttr(t, "service.version"); got != "1.2.3-test" {
					t.Errorf("service.version = %q, want 1.2.3-test", got)
				}
				x.wantLog(t, "telemetry export is on")
				x.wantLog(t, "otlp/grpc(http://127.0.0.1:")
			},
		},
		{
			name: "OTEL_SERVICE_NAME reaches the resource",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_SERVICE_NAME": "hb-east"},
			check: func(t *testing.T, x run) {
				if got := x.resourceAttr(t, "service.name"); got != "hb-east" {
					t.Errorf("service.name = %q, want hb-east", got)
				}
			},
		},
		{
			name: "OTEL_RESOURCE_ATTRIBUTES reaches the resource",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL,
				"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=ci,service.name=from-attrs"},
			check: func(t *testing.T, x run) {
				if got := x.resourceAttr(t, "deployment.environment.name"); got != "ci" {
					t.Errorf("deployment.environment.name = %q, want ci", got)
				}
				if got := x.resourceAttr(t, "service.name"); got != "from-attrs" {
					t.Errorf("service.name = %q, want from-attrs", got)
				}
			},
		},
		{
			name: "OTEL_SERVICE_NAME wins over OTEL_RESOURCE_ATTRIBUTES",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL,
				"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs", "OTEL_SERVICE_NAME": "from-name"},
			check: func(t *testing.T, x run) {
				if got := x.resourceAttr(t, "service.name"); got != "from-name" {
					t.Errorf("service.name = %q, want from-name", got)
				}
			},
		},
		{
			name:    "malformed OTEL_RESOURCE_ATTRIBUTES is rejected",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_RESOURCE_ATTRIBUTES": "novalue"},
			wantErr: "OTEL_RESOURCE_ATTRIBUTES",
		},
		{
			name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT alone exports only traces",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": grpcURL},
			check: func(t *testing.T, x run) {
				x.wantArrived(t, true, false, false)
				if _, nm, nl := isNoop(x.p); !nm || !nl {
					t.Errorf("metrics/logs providers not noop: %v %v", nm, nl)
				}
			},
		},
		{
			name:  "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT alone exports only metrics",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": grpcURL},
			check: func(t *testing.T, x run) { x.wantArrived(t, false, true, false) },
		},
		{
			name:  "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT alone exports only logs",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": grpcURL},
			check: func(t *testing.T, x run) { x.wantArrived(t, false, false, true) },
		},
		{
			name:  "OTEL_TRACES_EXPORTER=none sends no spans",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_TRACES_EXPORTER": "none"},
			check: func(t *testing.T, x run) { x.wantArrived(t, false, true, true) },
		},
		{
			name:  "OTEL_METRICS_EXPORTER=none sends no metrics",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_METRICS_EXPORTER": "none"},
			check: func(t *testing.T, x run) { x.wantArrived(t, true, false, true) },
		},
		{
			name:  "OTEL_LOGS_EXPORTER=none sends no logs",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_LOGS_EXPORTER": "none"},
			check: func(t *testing.T, x run) { x.wantArrived(t, true, true, false) },
		},
		{
			name: "OTEL_TRACES_EXPORTER=console writes spans to the console only",
			env:  map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "console"},
			check: func(t *testing.T, x run) {
				out := x.console.String()
				for _, want := range []string{`"Name":"row"`, `"Name":"test.histogram"`, `"Body":{"Type":"STRING","Value":"row"}`} {
					if !strings.Contains(out, want) {
						t.Errorf("console output lacks %s:\n%s", want, out)
					}
				}
				if n := x.r.Requests(); n != 0 {
					t.Errorf("receiver got %d requests", n)
				}
			},
		},
		{
			name: "OTEL_TRACES_EXPORTER=otlp,console does both",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_TRACES_EXPORTER": "otlp,console"},
			check: func(t *testing.T, x run) {
				x.wantArrived(t, true, true, true)
				if !strings.Contains(x.console.String(), `"Name":"row"`) {
					t.Errorf("console output lacks the span:\n%s", x.console.String())
				}
			},
		},
		{name: "unsupported exporter is rejected", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, wantErr: "OTEL_TRACES_EXPORTER"},
		{
			name: "OTEL_SDK_DISABLED=true gives noop providers and sends nothing",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_SDK_DISABLED": "true"},
			check: func(t *testing.T, x run) {
				if nt, nm, nl := isNoop(x.p); !nt || !nm || !nl {
					t.Errorf("noop providers: traces %v metrics %v logs %v, want all", nt, nm, nl)
				}
				if n := x.r.Requests(); n != 0 {
					t.Errorf("receiver got %d requests", n)
				}
				x.wantLog(t, "telemetry is disabled by OTEL_SDK_DISABLED")
			},
		},
		{
			name:  "OTEL_SDK_DISABLED=false changes nothing",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_SDK_DISABLED": "false"},
			check: func(t *testing.T, x run) { x.wantArrived(t, true, true, true) },
		},
		{
			name: "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf uses OTLP/HTTP",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": httpURL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
			check: func(t *testing.T, x run) {
				x.wantArrived(t, true, true, true)
				if ct := x.r.Metadata().Get("content-type"); len(ct) != 1 || ct[0] != "application/x-protobuf" {
					t.Errorf("content-type = %q, want application/x-protobuf (OTLP/HTTP)", ct)
				}
			},
		},
		{
			name: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL overrides per signal",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL,
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": httpURL + "/v1/traces"},
			// Spans can only arrive over HTTP: the traces endpoint is the HTTP port.
			check: func(t *testing.T, x run) { x.wantArrived(t, true, true, true) },
		},
		{name: "http/json is rejected", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{
			name: "OTEL_EXPORTER_OTLP_HEADERS arrive as gRPC metadata",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL,
				"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc123,x-tenant=t%201"},
			check: func(t *testing.T, x run) {
				md := x.r.Metadata()
				if got := md.Get("x-api-key"); len(got) != 1 || got[0] != "abc123" {
					t.Errorf("x-api-key = %q", got)
				}
				if got := md.Get("x-tenant"); len(got) != 1 || got[0] != "t 1" {
					t.Errorf("x-tenant = %q, want [t 1] (percent-decoded)", got)
				}
			},
		},
		{
			name: "OTEL_EXPORTER_OTLP_HEADERS arrive as HTTP headers",
			env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": httpURL, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
				"OTEL_EXPORTER_OTLP_HEADERS": "x-api-key=abc123"},
			check: func(t *testing.T, x run) {
				if got := x.r.Metadata().Get("x-api-key"); len(got) != 1 || got[0] != "abc123" {
					t.Errorf("x-api-key = %q", got)
				}
			},
		},
		{
			name: "OTEL_TRACES_SAMPLER unset: parent-based, 1 % of roots",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_TRACES_SAMPLER": ""},
			check: func(t *testing.T, x run) {
				// Binomial(2000, 0.01): mean 20; 100 or more is practically impossible.
				if n := x.countSampledRoots(t, 2000); n >= 100 {
					t.Errorf("%d of 2000 root spans sampled, want about 20", n)
				}
				parent := x.childOf(t, true)
				spans := x.r.Spans()
				if len(spans) != 1 || spans[0].ParentSpanID() != [8]byte(parent.SpanID()) ||
					spans[0].TraceID() != [16]byte(parent.TraceID()) {
					t.Errorf("child of a sampled parent: got %d spans, want 1 with parent %s", len(spans), parent.SpanID())
				}
				x.childOf(t, false)
				if n := len(x.r.Spans()); n != 0 {
					t.Errorf("child of an unsampled parent: %d spans exported, want 0", n)
				}
				x.wantLog(t, "parentbased_traceidratio(0.01)")
			},
		},
		{
			name: "OTEL_TRACES_SAMPLER_ARG alone sets the default sampler's ratio",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_TRACES_SAMPLER": "", "OTEL_TRACES_SAMPLER_ARG": "1"},
			check: func(t *testing.T, x run) {
				if n := x.countSampledRoots(t, 50); n != 50 {
					t.Errorf("%d of 50 root spans sampled, want 50", n)
				}
			},
		},
		{
			name: "OTEL_TRACES_SAMPLER=traceidratio with OTEL_TRACES_SAMPLER_ARG=0 samples nothing",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
			check: func(t *testing.T, x run) {
				x.wantArrived(t, false, true, true)
			},
		},
		{
			name:  "OTEL_TRACES_SAMPLER=always_off samples nothing",
			env:   map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_TRACES_SAMPLER": "always_off"},
			check: func(t *testing.T, x run) { x.wantArrived(t, false, true, true) },
		},
		{name: "unknown sampler is rejected", env: map[string]string{"OTEL_TRACES_SAMPLER": "xray"}, wantErr: "OTEL_TRACES_SAMPLER"},
		{
			name:    "OTEL_METRIC_EXPORT_INTERVAL drives periodic export",
			env:     map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": grpcURL, "OTEL_METRIC_EXPORT_INTERVAL": "50"},
			noFlush: true,
			check: func(t *testing.T, x run) {
				// Without the variable the first export would come after 60 s.
				x.r.WaitForMetric(t, "test.histogram", 5*time.Second)
			},
		},
		{name: "bad OTEL_METRIC_EXPORT_INTERVAL is rejected", env: map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": "1m"}, wantErr: "OTEL_METRIC_EXPORT_INTERVAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := otlptest.Start(t)
			env := map[string]string{"OTEL_TRACES_SAMPLER": "always_on"}
			for k, v := range tt.env {
				v = strings.ReplaceAll(v, grpcURL, r.URL())
				env[k] = strings.ReplaceAll(v, httpURL, r.HTTPURL())
			}
			setEnv(t, env)
			logger, logs := testkit.JSONLogger()
			console := &testkit.Buffer{}
			p, err := Setup(context.Background(), Options{ServiceVersion: "1.2.3-test", Logger: logger, console: console})
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Setup err = %v, want ErrInvalidConfig naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Setup: %v", err)
			}
			shutdownOnCleanup(t, p)
			record(context.Background(), t, p, "row")
			if !tt.noFlush {
				if err := flush(p); err != nil {
					t.Fatalf("ForceFlush: %v", err)
				}
			}
			tt.check(t, run{r: r, p: p, logs: logs, console: console})
		})
	}
}

// TestResource checks the resource on the wire: Kubernetes attributes from
// the downward-API variables, host and process attributes, and no command
// line (it may carry secrets).
func TestResource(t *testing.T) {
	r := otlptest.Start(t)
	setEnv(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_SAMPLER": "always_on",
		envPodName: "hb-7f9c", envPodNamespace: "monitoring", envNodeName: "node-3",
		envPodUID: "0b5c4c1e-1111-2222-3333-444455556666",
		// CONTAINER_NAME unset: the attribute must be absent, not empty.
		"OTEL_RESOURCE_ATTRIBUTES": "k8s.node.name=node-override",
	})
	p, err := Setup(context.Background(), Options{ServiceVersion: "v9", Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)
	record(context.Background(), t, p, "res")
	if err := flush(p); err != nil {
		t.Fatal(err)
	}
	check := func(signal string, attrs map[string]any) {
		t.Helper()
		want := map[string]string{
			"service.name": "heartbeat", "service.version": "v9",
			"k8s.pod.name": "hb-7f9c", "k8s.namespace.name": "monitoring",
			"k8s.node.name": "node-override", "k8s.pod.uid": "0b5c4c1e-1111-2222-3333-444455556666",
			"process.runtime.name": "go", "telemetry.sdk.language": "go",
		}
		for k, v := range want {
			if got := fmt.Sprint(attrs[k]); got != v {
				t.Errorf("%s resource %s = %q, want %q", signal, k, got, v)
			}
		}
		for _, k := range []string{"host.name", "process.pid", "process.executable.name", "process.runtime.version"} {
			if _, ok := attrs[k]; !ok {
				t.Errorf("%s resource lacks %s", signal, k)
			}
		}
		for _, k := range []string{"process.command_args", "process.command_line", "process.command", "k8s.container.name"} {
			if v, ok := attrs[k]; ok {
				t.Errorf("%s resource has %s = %v, want absent", signal, k, v)
			}
		}
	}
	check("traces", r.WaitForSpans(t, 1, 5*time.Second)[0].Resource.Attributes().AsRaw())
	check("metrics", r.WaitForMetric(t, "test.histogram", 5*time.Second).Resource.Attributes().AsRaw())
	check("logs", r.WaitForLogs(t, 1, 5*time.Second)[0].Resource.Attributes().AsRaw())
}

// TestPropagator checks that W3C traceparent and baggage round-trip, even
// with telemetry disabled (a pass-through hop must not break the trace).
func TestPropagator(t *testing.T) {
	setEnv(t, map[string]string{"OTEL_SDK_DISABLED": "true"})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	in := propagation.MapCarrier{
		"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"baggage":     "tenant=acme",
	}
	ctx := p.Propagator.Extract(context.Background(), in)
	ctx, span := p.TracerProvider.Tracer("test").Start(ctx, "hop")
	defer span.End()
	out := propagation.MapCarrier{}
	p.Propagator.Inject(ctx, out)
	if got := out["traceparent"]; got != in["traceparent"] {
		t.Errorf("traceparent = %q, want %q", got, in["traceparent"])
	}
	if got := out["baggage"]; got != "tenant=acme" {
		t.Errorf("baggage = %q, want tenant=acme", got)
	}
}
