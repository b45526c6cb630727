package checks

import (
	"cmp"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog"
)

// SyslogConfig says where transition alerts go (see syslog.Config).
type SyslogConfig = syslog.Config

// alert reports a transition of s: one syslog line, one OTel log record and
// one slog line, all with the same text and the run's trace id.
func (r *Runner) alert(ctx context.Context, s *series, tr transition, res probe.Result, prev, st SeriesStatus) {
	c := s.chk
	now := time.Now()
	sc := trace.SpanContextFromContext(ctx)
	var b strings.Builder
	kv := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(logfmtValue(v))
	}
	var (
		severity  syslog.Severity
		otelSev   otellog.Severity
		sevText   string
		slogLevel slog.Level
	)
	if tr == wentDown {
		severity, otelSev, sevText, slogLevel = syslog.Alert, otellog.SeverityError3, "ALERT", slog.LevelError
	} else {
		severity, otelSev, sevText, slogLevel = syslog.Notice, otellog.SeverityInfo2, "NOTICE", slog.LevelInfo
	}
	b.WriteString(sevText)
	kv("check", c.cfg.Name)
	kv("target", c.display)
	if a := cmp.Or(s.address, st.Address); a.IsValid() { // the sweep series: its last peer
		kv("address", a.String())
	}
	if tr == wentDown {
		kv("state", "down")
		kv("reason", st.LastError)
		kv("error.type", res.ErrorType)
		kv("failures", strconv.Itoa(st.ConsecutiveFailures))
	} else {
		kv("state", "up")
		kv("successes", strconv.Itoa(st.ConsecutiveSuccesses))
		if !prev.Since.IsZero() {
			kv("down_for", now.Sub(prev.Since).Round(time.Millisecond).String())
		}
	}
	if sc.HasTraceID() {
		kv("trace_id", sc.TraceID().String())
	}
	text := b.String()

	if r.alerts != nil {
		r.alerts.Send(ctx, severity, text, now)
	}
	r.log.Log(ctx, slogLevel, text, "check", c.cfg.Name)

	var rec otellog.Record
	rec.SetTimestamp(now)
	rec.SetSeverity(otelSev)
	rec.SetSeverityText(sevText)
	rec.SetBody(attribute.StringValue(text))
	if tr == wentDown {
		rec.SetEventName("heartbeat.check.down")
	} else {
		rec.SetEventName("heartbeat.check.up")
	}
	attrs := append(s.base.ToSlice(), attribute.String("check.target", c.display))
	if tr == wentDown {
		attrs = append(attrs, semconv.ErrorTypeKey.String(res.ErrorType))
	}
	if s.role == mesh.RoleSweep && st.Address.IsValid() {
		// A record, not a series: naming the sweep's peer costs nothing here.
		attrs = append(attrs, attrMeshPeer.String(st.Address.Addr().String()))
	}
	rec.AddAttributes(attrs...)
	// ctx carries the run's span, so the record links to the failing run's trace.
	r.events.Emit(ctx, rec)
}

// logfmtValue quotes v when it would not read back as one logfmt value.
func logfmtValue(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\r\n\"=\\") || !strconv.CanBackquote(v) {
		return strconv.Quote(v)
	}
	return v
}
