package telemetry

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalidConfig is wrapped by every error Setup returns for a bad OTEL_* environment variable.
var ErrInvalidConfig = errors.New("invalid telemetry configuration")

// Signal names, as used in OTEL_<SIGNAL>_EXPORTER and in the `signal`
// attribute of the self-metrics.
const (
	signalTraces  = "traces"
	signalMetrics = "metrics"
	signalLogs    = "logs"
)

// Exporter kinds accepted in OTEL_{TRACES,METRICS,LOGS}_EXPORTER.
const (
	exporterOTLP    = "otlp"
	exporterConsole = "console"
	exporterNone    = "none"
)

// OTLP transports accepted in OTEL_EXPORTER_OTLP[_<SIGNAL>]_PROTOCOL.
const (
	protocolGRPC         = "grpc"
	protocolHTTPProtobuf = "http/protobuf"
)

// Defaults that differ from, or are not covered by, the SDK's own env support.
const (
	defaultServiceName  = "heartbeat"
	defaultSamplerRatio = 0.01
	defaultMaxQueueSize = 2048 // sdktrace.DefaultMaxQueueSize
	// Spans wait in the batch processor until a batch is full or 5 s pass.
	// At the SDK's 512, the 1 % of payload requests that are sampled keep
	// hundreds of spans of pointers on a heap of a few MB, walked by every
	// GC cycle, and each export marshals into gRPC's 1 MiB buffer tier
	// (messages above 32 KiB take it). Measured under wrk at 32
	// connections, peak RSS was 26.1 MB at 512, 24.0-24.9 at 128 and
	// 22.5-22.9 at 64. The price is more export calls when every request
	// is sampled; such a caller raises OTEL_BSP_MAX_EXPORT_BATCH_SIZE.
	defaultSpanBatchSize = 64
	// The log batch processor preallocates its ring and its export batch,
	// about 600 bytes a record, full of pointer fields the garbage collector
	// walks on every cycle: at the SDK's 2048/512 they are 1.5 MB of idle
	// RSS, and on a payload server whose heap is a few MB, 512 records of
	// ring cost about 0.4 µs of GC work per request. Heartbeat logs little
	// (alerts, state changes), and the export loop drains the queue every
	// 64 records, so a small ring holds any burst but a synchronized one.
	defaultLogQueueSize  = 128
	defaultLogBatchSize  = 64
	envSDKDisabled       = "OTEL_SDK_DISABLED"
	envSampler           = "OTEL_TRACES_SAMPLER"
	envSamplerArg        = "OTEL_TRACES_SAMPLER_ARG"
	envMetricInterval    = "OTEL_METRIC_EXPORT_INTERVAL"
	envOTLPEndpoint      = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envOTLPProtocol      = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envBSPMaxQueueSize   = "OTEL_BSP_MAX_QUEUE_SIZE"
	envBSPMaxBatchSize   = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
	envBLRPMaxQueueSize  = "OTEL_BLRP_MAX_QUEUE_SIZE"
	envBLRPMaxBatchSize  = "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE"
	envPodName           = "POD_NAME"
	envPodNamespace      = "POD_NAMESPACE"
	envNodeName          = "NODE_NAME"
	envPodUID            = "POD_UID"
	envContainerName     = "CONTAINER_NAME"
	samplerParentBasedTI = "parentbased_traceidratio"
)

// supportedSamplers are the OTEL_TRACES_SAMPLER values the Go SDK implements.
// The SDK silently falls back to always-on sampling for anything else, which
// is too expensive a surprise, so Setup rejects them instead.
var supportedSamplers = []string{
	"always_on", "always_off", "traceidratio",
	"parentbased_always_on", "parentbased_always_off", samplerParentBasedTI,
}

// signalConfig is the resolved export configuration of one signal.
type signalConfig struct {
	name      string
	exporters []string // otlp, console; empty means the signal is off
	protocol  string   // for otlp
	endpoint  string   // for the startup log line only; the exporters read the env themselves
	queueSize int      // traces and logs: bound of the items held for export
	batchSize int      // traces and logs: most items per export (the SDK's env value loses to an option)
	// configured is true when an exporter or endpoint variable is set for the signal.
	configured bool
}

// enabled reports whether the signal has at least one exporter.
func (s signalConfig) enabled() bool { return len(s.exporters) > 0 }

// describe renders the signal's exporters for the startup log line.
func (s signalConfig) describe() string {
	if !s.enabled() {
		return exporterNone
	}
	parts := make([]string, 0, len(s.exporters))
	for _, e := range s.exporters {
		if e == exporterOTLP {
			e = fmt.Sprintf("otlp/%s(%s)", s.protocol, redactURL(s.endpointOrDefault()))
		}
		parts = append(parts, e)
	}
	return strings.Join(parts, ",")
}

func (s signalConfig) endpointOrDefault() string {
	if s.endpoint != "" {
		return s.endpoint
	}
	if s.protocol == protocolHTTPProtobuf {
		return "https://localhost:4318"
	}
	return "https://localhost:4317"
}

// config is what Setup reads from the environment on top of what the SDK and
// exporters read themselves.
type config struct {
	disabled bool
	// explicitExport is true when any OTEL_*_EXPORTER or OTLP endpoint
	// variable is set, i.e. the user asked for something.
	explicitExport bool
	traces         signalConfig
	metrics        signalConfig
	logs           signalConfig
	// defaultSamplerRatio is set only when Setup must override the SDK's env handling:
	// OTEL_TRACES_SAMPLER is unset, so our default (parent-based ratio)
	// applies with OTEL_TRACES_SAMPLER_ARG or defaultSamplerRatio.
	defaultSamplerRatio *float64
}

// configFromEnv resolves and validates the configuration from getenv.
func configFromEnv(getenv func(string) string) (config, error) {
	var cfg config
	var errs []error
	bad := func(key, val, why string) {
		errs = append(errs, fmt.Errorf("%w: %s=%q: %s", ErrInvalidConfig, key, val, why))
	}

	if v := strings.TrimSpace(getenv(envSDKDisabled)); v != "" {
		switch strings.ToLower(v) {
		case "true":
			cfg.disabled = true
		case "false":
		default:
			bad(envSDKDisabled, v, `want "true" or "false"`)
		}
	}

	cfg.traces = signalFromEnv(signalTraces, getenv, bad)
	cfg.metrics = signalFromEnv(signalMetrics, getenv, bad)
	cfg.logs = signalFromEnv(signalLogs, getenv, bad)
	cfg.explicitExport = cfg.traces.configured || cfg.metrics.configured || cfg.logs.configured

	cfg.traces.queueSize = positiveInt(getenv, envBSPMaxQueueSize, defaultMaxQueueSize, bad)
	cfg.traces.batchSize = min(positiveInt(getenv, envBSPMaxBatchSize, defaultSpanBatchSize, bad), cfg.traces.queueSize)
	cfg.logs.queueSize = positiveInt(getenv, envBLRPMaxQueueSize, defaultLogQueueSize, bad)
	cfg.logs.batchSize = min(positiveInt(getenv, envBLRPMaxBatchSize, defaultLogBatchSize, bad), cfg.logs.queueSize)
	if v := strings.TrimSpace(getenv(envMetricInterval)); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
			bad(envMetricInterval, v, "want a positive number of milliseconds")
		}
	}

	sampler := strings.ToLower(strings.TrimSpace(getenv(envSampler)))
	arg := strings.TrimSpace(getenv(envSamplerArg))
	if sampler != "" && !slices.Contains(supportedSamplers, sampler) {
		bad(envSampler, sampler, "unsupported; want one of "+strings.Join(supportedSamplers, ", "))
	}
	ratio := float64(defaultSamplerRatio)
	if arg != "" && (sampler == "" || strings.HasSuffix(sampler, "traceidratio")) {
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			bad(envSamplerArg, arg, "want a ratio between 0 and 1")
		}
		ratio = r
	}
	if sampler == "" {
		cfg.defaultSamplerRatio = &ratio
	}

	return cfg, errors.Join(errs...)
}

// signalFromEnv reads OTEL_<SIGNAL>_EXPORTER and the OTLP protocol and
// endpoint variables for one signal. With neither an exporter nor an endpoint
// configured the signal is off, so `make run` stays quiet without a collector.
func signalFromEnv(name string, getenv func(string) string, bad func(key, val, why string)) signalConfig {
	up := strings.ToUpper(name)
	s := signalConfig{name: name}

	s.endpoint = strings.TrimSpace(getenv("OTEL_EXPORTER_OTLP_" + up + "_ENDPOINT"))
	if s.endpoint == "" {
		s.endpoint = strings.TrimSpace(getenv(envOTLPEndpoint))
	}

	key := "OTEL_EXPORTER_OTLP_" + up + "_PROTOCOL"
	proto := strings.TrimSpace(getenv(key))
	if proto == "" {
		key, proto = envOTLPProtocol, strings.TrimSpace(getenv(envOTLPProtocol))
	}
	switch proto {
	case "", protocolGRPC:
		s.protocol = protocolGRPC
	case protocolHTTPProtobuf:
		s.protocol = protocolHTTPProtobuf
	case "http/json":
		bad(key, proto, "not supported by the Go OTLP exporters; use grpc or http/protobuf")
	default:
		bad(key, proto, "want grpc or http/protobuf")
	}

	key = "OTEL_" + up + "_EXPORTER"
	raw := strings.TrimSpace(getenv(key))
	s.configured = raw != "" || s.endpoint != ""
	if raw == "" {
		if s.endpoint != "" {
			s.exporters = []string{exporterOTLP}
		}
		return s
	}
	for _, e := range strings.Split(raw, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch e {
		case exporterOTLP, exporterConsole:
			if !slices.Contains(s.exporters, e) {
				s.exporters = append(s.exporters, e)
			}
		case exporterNone:
			if raw != exporterNone {
				bad(key, raw, `"none" cannot be combined with other exporters`)
			}
		default:
			bad(key, raw, "unsupported exporter "+strconv.Quote(e)+"; want otlp, console or none")
		}
	}
	return s
}

// positiveInt reads a positive integer variable, or returns def when unset.
func positiveInt(getenv func(string) string, key string, def int, bad func(key, val, why string)) int {
	v := strings.TrimSpace(getenv(key))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		bad(key, v, "want a positive integer")
		return def
	}
	return n
}
