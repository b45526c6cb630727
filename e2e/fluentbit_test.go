//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// syntheticRecord finds the synthetic ALERT record in the log store, as
// Fluent Bit forwarded it from the collector: trace id in hex, severity,
// attributes, resource, and the timestamp to the nanosecond as sent.
func syntheticRecord(file, traceID, check string, sentNanos int64) (string, error) {
	recs, err := LogRecords(file)
	if err != nil {
		return "", fmt.Errorf("log store: %w", err)
	}
	i := slices.IndexFunc(recs, func(r LogRecord) bool { return strings.Contains(r.BodyString(), "check="+check) })
	if i < 0 {
		return "", fmt.Errorf("log store: no record for %s among %d (Fluent Bit did not forward it yet)", check, len(recs))
	}
	r := recs[i]
	switch {
	case r.TraceID != traceID:
		return "", fmt.Errorf("log store: %s record's trace id %q, sent %q", check, r.TraceID, traceID)
	case r.TimeUnixNano != sentNanos:
		return "", fmt.Errorf("log store: %s record's timestamp %d, sent %d (%v apart)", check, r.TimeUnixNano, sentNanos, time.Duration(r.TimeUnixNano-sentNanos))
	case r.SeverityText != "ALERT" || r.SeverityNumber != 19:
		return "", fmt.Errorf("log store: %s record's severity %s/%d, sent ALERT/19", check, r.SeverityText, r.SeverityNumber)
	case r.Attributes["check.name"] != check:
		return "", fmt.Errorf("log store: %s record's attributes %v lack check.name", check, r.Attributes)
	case r.Resource["service.name"] != "e2e-synthetic" || r.Resource["host.name"] != "e2e-host":
		return "", fmt.Errorf("log store: %s record's resource %v", check, r.Resource)
	}
	return fmt.Sprintf("trace %s, ALERT/19, timestamp exact to the ns, check.name and resource kept", r.TraceID), nil
}

// fluentBitOTLP: sidecar A's ALERT for the closed port went collector →
// Fluent Bit (opentelemetry input) → the shipped opentelemetry output → log
// store, with body, severity, check name, reason, error.type, resource and
// the failing run's trace id, the one in the syslog ALERT line.
func fluentBitOTLP(ctx context.Context, e *env) (string, error) {
	if e.s.NoFluentBit != "" {
		return "", unavailable(e.s.NoFluentBit)
	}
	var detail string
	err := Poll(ctx, 30*time.Second, 250*time.Millisecond, func(context.Context) error {
		recs, err := LogRecords(e.s.LogStoreFile)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(recs, func(r LogRecord) bool {
			return strings.HasPrefix(r.BodyString(), "ALERT check="+CheckClosed) && r.Resource["k8s.pod.name"] == PodA &&
				(e.alertTrace == "" || r.TraceID == e.alertTrace)
		})
		if i < 0 {
			return fmt.Errorf("no ALERT record for %s from %s with trace id %q among %d records", CheckClosed, PodA, e.alertTrace, len(recs))
		}
		r := recs[i]
		if !reasonRe.MatchString(r.BodyString()) {
			return fmt.Errorf("ALERT record's body has no reason=: %q", r.BodyString())
		}
		if len(r.TraceID) != 32 || strings.Trim(r.TraceID, "0123456789abcdef") != "" {
			return fmt.Errorf("ALERT record's trace id %q is not 32 hex digits", r.TraceID)
		}
		want := map[string]any{"check.name": CheckClosed, "error.type": "connection_refused"}
		for k, v := range want {
			if r.Attributes[k] != v {
				return fmt.Errorf("ALERT record's attribute %s = %v, want %v (attributes %v)", k, r.Attributes[k], v, r.Attributes)
			}
		}
		for k, v := range map[string]any{"service.name": ServiceName, "k8s.namespace.name": Namespace, "k8s.node.name": "e2e-node"} {
			if r.Resource[k] != v {
				return fmt.Errorf("ALERT record's resource %s = %v, want %v", k, r.Resource[k], v)
			}
		}
		if r.SeverityText != "ALERT" || r.SeverityNumber < 17 {
			return fmt.Errorf("ALERT record's severity %s/%d, want ALERT/≥17", r.SeverityText, r.SeverityNumber)
		}
		if r.TimeUnixNano%int64(time.Second) == 0 {
			return fmt.Errorf("ALERT record's timestamp %d has no sub-second part: Fluent Bit dropped it", r.TimeUnixNano)
		}
		detail = fmt.Sprintf("OTLP path: %s/%d, trace %s (the syslog ALERT's), attributes check.name=%v error.type=%v, resource pod %v, time %s, %q",
			r.SeverityText, r.SeverityNumber, r.TraceID, r.Attributes["check.name"], r.Attributes["error.type"], r.Resource["k8s.pod.name"],
			time.Unix(0, r.TimeUnixNano).UTC().Format(time.RFC3339Nano), r.BodyString())
		return nil
	})
	return detail, err
}

// accessFields are the parser's fields of one --log line with their OTLP
// types, plus what the tail input, the cri parser and record_modifier add.
var accessFields = map[string]string{
	"time": "Str", "remote": "Str", "method": "Str", "path": "Str",
	"status": "Int", "bytes": "Int", "duration_us": "Int",
	"stream": "Str", "_p": "Str", "k8s_node_name": "Str",
}

// fluentBitTail: sidecar B's access-log lines, written as the container
// runtime writes container logs and read by the tail input through the cri
// and access-log parsers, reach the log store with every field's name and
// type, one "time" (the request's), and the request's time as timestamp.
func fluentBitTail(ctx context.Context, e *env) (string, error) {
	if e.s.NoFluentBit != "" {
		return "", unavailable(e.s.NoFluentBit)
	}
	var detail string
	err := Poll(ctx, 30*time.Second, 500*time.Millisecond, func(context.Context) error {
		recs, err := LogRecords(e.s.LogStoreFile)
		if err != nil {
			return err
		}
		var n, other int
		for _, r := range recs {
			// A line that is not an access-log line (the sidecars' slog
			// output on stderr) passes through: the line as body, the
			// other fields as attributes.
			if strings.HasPrefix(r.BodyString(), "time=") && r.Attributes["stream"] == "stderr" && r.Attributes["k8s_node_name"] == fluentBitNode {
				other++
			}
			m := r.BodyMap()
			if m == nil || m["path"] != "/heartbeat/65536" {
				continue
			}
			if err := accessRecord(r); err != nil {
				return err
			}
			if n == 0 {
				var parts []string
				for _, k := range r.BodyKeys {
					parts = append(parts, fmt.Sprintf("%s(%s)=%v", k, r.BodyTypes[k], m[k]))
				}
				detail = "tail path fields: " + strings.Join(parts, " ")
			}
			n++
		}
		if n == 0 {
			return fmt.Errorf("no access-log record for /heartbeat/65536 among %d records in the log store", len(recs))
		}
		if other == 0 {
			return fmt.Errorf("no stderr line of the sidecars among %d records in the log store, with stream and k8s_node_name attributes", len(recs))
		}
		detail += fmt.Sprintf("\n%d access-log records, all well-formed; %d stderr lines passed through (body the line, stream and node as attributes)", n, other)
		return nil
	})
	return detail, err
}

// accessRecord checks one access-log record of A's probe of B's payload.
func accessRecord(r LogRecord) error {
	m := r.BodyMap()
	for k, typ := range accessFields {
		if r.BodyTypes[k] != typ {
			return fmt.Errorf("access-log record field %s: type %q, want %s (fields %v)", k, r.BodyTypes[k], typ, r.BodyTypes)
		}
	}
	for _, k := range r.BodyKeys {
		if _, ok := accessFields[k]; !ok {
			return fmt.Errorf("access-log record has unexpected field %s (fields %v)", k, r.BodyKeys)
		}
	}
	if len(r.BodyKeys) != len(accessFields) {
		return fmt.Errorf("access-log record has %d fields, want %d, once each: %v", len(r.BodyKeys), len(accessFields), r.BodyKeys)
	}
	at, err := time.Parse(time.RFC3339, m["time"].(string))
	if err != nil {
		return fmt.Errorf("access-log record time %q: %w", m["time"], err)
	}
	if r.TimeUnixNano != at.UnixNano() {
		return fmt.Errorf("access-log record timestamp %s, its time field %s: the parser's Time_Key was not applied",
			time.Unix(0, r.TimeUnixNano).UTC().Format(time.RFC3339Nano), m["time"])
	}
	if _, _, err := net.SplitHostPort(m["remote"].(string)); err != nil {
		return fmt.Errorf("access-log record remote %q: %w", m["remote"], err)
	}
	// JSON numbers come back as float64.
	if m["method"] != "GET" || m["status"] != 200.0 || m["bytes"] != 65536.0 || m["stream"] != "stdout" || m["_p"] != "F" || m["k8s_node_name"] != fluentBitNode {
		return fmt.Errorf("access-log record %v", m)
	}
	if d, _ := m["duration_us"].(float64); d <= 0 {
		return fmt.Errorf("access-log record duration_us %v", m["duration_us"])
	}
	return nil
}
