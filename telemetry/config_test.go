package telemetry

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestConfigFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // substring; "" means no error
		check   func(t *testing.T, c config)
	}{
		{
			name: "nothing set: every signal off, default sampler",
			check: func(t *testing.T, c config) {
				if c.traces.enabled() || c.metrics.enabled() || c.logs.enabled() || c.explicitExport {
					t.Errorf("signals on without configuration: %+v", c)
				}
				if c.defaultSamplerRatio == nil || *c.defaultSamplerRatio != 0.01 {
					t.Errorf("default sampler ratio = %v, want 0.01", c.defaultSamplerRatio)
				}
				if c.traces.queueSize != 2048 || c.logs.queueSize != 128 || c.logs.batchSize != 64 || c.traces.batchSize != 64 {
					t.Errorf("queue sizes = %d, %d, batches %d, %d, want 2048, 128, 64, 64",
						c.traces.queueSize, c.logs.queueSize, c.traces.batchSize, c.logs.batchSize)
				}
			},
		},
		{
			name: "general endpoint turns on all signals over gRPC",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"},
			check: func(t *testing.T, c config) {
				for _, s := range []signalConfig{c.traces, c.metrics, c.logs} {
					if !slices.Equal(s.exporters, []string{"otlp"}) || s.protocol != "grpc" {
						t.Errorf("%s: exporters %v protocol %s, want [otlp] grpc", s.name, s.exporters, s.protocol)
					}
				}
			},
		},
		{
			name: "per-signal endpoint turns on only that signal",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://collector:4317"},
			check: func(t *testing.T, c config) {
				if c.traces.enabled() || c.metrics.enabled() || !c.logs.enabled() {
					t.Errorf("enabled: traces %v metrics %v logs %v, want only logs",
						c.traces.enabled(), c.metrics.enabled(), c.logs.enabled())
				}
			},
		},
		{
			name: "per-signal protocol overrides the general one",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":         "http://collector:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL":         "http/protobuf",
				"OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc",
			},
			check: func(t *testing.T, c config) {
				if c.traces.protocol != "http/protobuf" || c.metrics.protocol != "grpc" || c.logs.protocol != "http/protobuf" {
					t.Errorf("protocols %s %s %s", c.traces.protocol, c.metrics.protocol, c.logs.protocol)
				}
			},
		},
		{
			name: "exporter list is deduplicated and case-insensitive",
			env:  map[string]string{"OTEL_TRACES_EXPORTER": "OTLP, console,otlp"},
			check: func(t *testing.T, c config) {
				if !slices.Equal(c.traces.exporters, []string{"otlp", "console"}) {
					t.Errorf("exporters = %v", c.traces.exporters)
				}
			},
		},
		{
			name: "exporter none keeps the signal off even with an endpoint",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_METRICS_EXPORTER": "none"},
			check: func(t *testing.T, c config) {
				if c.metrics.enabled() || !c.traces.enabled() || !c.explicitExport {
					t.Errorf("metrics %v traces %v explicit %v", c.metrics.enabled(), c.traces.enabled(), c.explicitExport)
				}
			},
		},
		{
			name: "sampler arg alone sets the default sampler's ratio",
			env:  map[string]string{"OTEL_TRACES_SAMPLER_ARG": "0.25"},
			check: func(t *testing.T, c config) {
				if c.defaultSamplerRatio == nil || *c.defaultSamplerRatio != 0.25 {
					t.Errorf("ratio = %v, want 0.25", c.defaultSamplerRatio)
				}
			},
		},
		{
			name: "explicit sampler is left to the SDK",
			env:  map[string]string{"OTEL_TRACES_SAMPLER": "always_on"},
			check: func(t *testing.T, c config) {
				if c.defaultSamplerRatio != nil {
					t.Errorf("ratio = %v, want nil", *c.defaultSamplerRatio)
				}
			},
		},
		{
			name: "queue sizes",
			env:  map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BLRP_MAX_QUEUE_SIZE": "20"},
			check: func(t *testing.T, c config) {
				if c.traces.queueSize != 10 || c.logs.queueSize != 20 {
					t.Errorf("queue sizes = %d, %d, want 10, 20", c.traces.queueSize, c.logs.queueSize)
				}
			},
		},
		{
			name: "log export batch: from the env, never above the queue",
			env:  map[string]string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "300", "OTEL_BLRP_MAX_QUEUE_SIZE": "200"},
			check: func(t *testing.T, c config) {
				if c.logs.batchSize != 200 {
					t.Errorf("log batch = %d, want 200 (the queue size)", c.logs.batchSize)
				}
			},
		},
		{
			name: "span export batch: from the env, never above the queue",
			env:  map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "512", "OTEL_BSP_MAX_QUEUE_SIZE": "300"},
			check: func(t *testing.T, c config) {
				if c.traces.batchSize != 300 {
					t.Errorf("span batch = %d, want 300 (the queue size)", c.traces.batchSize)
				}
			},
		},
		{name: "SDK disabled", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE"},
			check: func(t *testing.T, c config) {
				if !c.disabled {
					t.Error("not disabled")
				}
			}},
		{name: "bad SDK disabled", env: map[string]string{"OTEL_SDK_DISABLED": "1"}, wantErr: "OTEL_SDK_DISABLED"},
		{name: "http/json", env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, wantErr: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{name: "bad per-signal protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "udp"}, wantErr: "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL"},
		{name: "unknown exporter", env: map[string]string{"OTEL_METRICS_EXPORTER": "prometheus"}, wantErr: "OTEL_METRICS_EXPORTER"},
		{name: "none mixed", env: map[string]string{"OTEL_LOGS_EXPORTER": "none,otlp"}, wantErr: "OTEL_LOGS_EXPORTER"},
		{name: "unknown sampler", env: map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}, wantErr: "OTEL_TRACES_SAMPLER"},
		{name: "ratio out of range", env: map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, wantErr: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "ratio not a number", env: map[string]string{"OTEL_TRACES_SAMPLER_ARG": "1%"}, wantErr: "OTEL_TRACES_SAMPLER_ARG"},
		{name: "bad interval", env: map[string]string{"OTEL_METRIC_EXPORT_INTERVAL": "10s"}, wantErr: "OTEL_METRIC_EXPORT_INTERVAL"},
		{name: "bad queue size", env: map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "0"}, wantErr: "OTEL_BSP_MAX_QUEUE_SIZE"},
		{name: "bad log batch size", env: map[string]string{"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "-1"}, wantErr: "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"},
		{name: "bad span batch size", env: map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "0"}, wantErr: "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := configFromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidConfig naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
