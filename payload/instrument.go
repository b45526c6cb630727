package payload

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// instrumentationName is the instrumentation scope of the payload server's telemetry.
const instrumentationName = "github.com/heartbeat-sidecar/heartbeat/payload"

type routeID uint8

const (
	routeHeartbeat routeID = iota
	routeWire
	routeVersion
	routeHealthz
	routeReadyz
	routeExtra // mounted handlers; their attributes are built per request
	routeOther // unmatched: http.route is left out, as semconv asks
	numRoutes
)

var routeNames = [numRoutes]string{RouteHeartbeat, RouteWire, "/version", "/healthz", "/readyz", "", ""}

var methods = [...]string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, "_OTHER"}

var statuses = [...]int{200, 400, 404, 405, 413, 503}

const (
	numMethods  = len(methods)
	numStatuses = len(statuses) + 1 // the last slot is "anything else": not cached
	numSchemes  = 2
	numProtos   = 2
)

// instruments holds the payload server's OTel instruments and the attribute
// sets of every common answer, built once so a request allocates nothing.
type instruments struct {
	tracer    trace.Tracer
	meter     metric.Meter
	prop      propagation.TextMapPropagator
	duration  metric.Float64Histogram
	reqSize   metric.Int64Histogram
	respSize  metric.Int64Histogram
	startOpts []trace.SpanStartOption
	spanNames [numMethods][numRoutes]string
	sets      [numMethods * int(numRoutes) * numStatuses * numSchemes * numProtos]atomic.Pointer[attrSet]
	tracesOn  bool
	metricsOn bool
}

// attrSet is one answer's attributes in the forms the metric API takes.
type attrSet struct {
	opt []metric.RecordOption
}

func newInstruments(mp metric.MeterProvider, tp trace.TracerProvider, prop propagation.TextMapPropagator) (*instruments, error) {
	// No-op providers mean the signal is off: skipping them keeps the hot
	// path free of the no-op tracer's context allocation.
	if _, ok := mp.(metricnoop.MeterProvider); ok {
		mp = nil
	}
	if _, ok := tp.(tracenoop.TracerProvider); ok {
		tp = nil
	}
	in := &instruments{prop: prop, metricsOn: mp != nil, tracesOn: tp != nil}
	if mp == nil {
		mp = metricnoop.NewMeterProvider()
	}
	meter := mp.Meter(instrumentationName)
	in.meter = meter
	var err error
	// Bucket boundaries are the telemetry package's views: one place for every HTTP histogram.
	if in.duration, err = meter.Float64Histogram("http.server.request.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of HTTP server requests.")); err != nil {
		return nil, fmt.Errorf("payload: creating http.server.request.duration: %w", err)
	}
	if in.reqSize, err = meter.Int64Histogram("http.server.request.body.size",
		metric.WithUnit("By"),
		metric.WithDescription("Size of HTTP server request bodies.")); err != nil {
		return nil, fmt.Errorf("payload: creating http.server.request.body.size: %w", err)
	}
	if in.respSize, err = meter.Int64Histogram("http.server.response.body.size",
		metric.WithUnit("By"),
		metric.WithDescription("Size of HTTP server response bodies.")); err != nil {
		return nil, fmt.Errorf("payload: creating http.server.response.body.size: %w", err)
	}
	if tp != nil {
		in.tracer = tp.Tracer(instrumentationName)
		in.startOpts = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}
	}
	for m := range methods {
		for r := range numRoutes {
			name := methods[m]
			if routeNames[r] != "" {
				name += " " + routeNames[r]
			}
			in.spanNames[m][r] = name
		}
	}
	return in, nil
}

func methodIndex(m string) int {
	switch m {
	case http.MethodGet:
		return 0
	case http.MethodHead:
		return 1
	case http.MethodPost:
		return 2
	case http.MethodPut:
		return 3
	}
	return 4
}

func statusIndex(code int) int {
	for i, s := range statuses {
		if s == code {
			return i
		}
	}
	return len(statuses)
}

// routeOf classifies the path the way ServeHTTP routes it.
func (s *Server) routeOf(path string) routeID {
	switch {
	case strings.HasPrefix(path, wirePrefix):
		return routeWire
	case strings.HasPrefix(path, prefix):
		return routeHeartbeat
	case path == "/version":
		return routeVersion
	case path == "/healthz":
		return routeHealthz
	case path == "/readyz":
		return routeReadyz
	}
	if _, ok := s.extra[path]; ok {
		return routeExtra
	}
	return routeOther
}

// startSpan continues the caller's trace when it sent one. Without a tracer it
// returns the request's context untouched and a nil span.
func (in *instruments) startSpan(r *http.Request, route routeID) (context.Context, trace.Span) {
	ctx := r.Context()
	if !in.tracesOn {
		return ctx, nil
	}
	if in.prop != nil && len(r.Header["Traceparent"]) > 0 {
		ctx = in.prop.Extract(ctx, headerCarrier(r.Header))
	}
	name := in.spanNames[methodIndex(r.Method)][route]
	if route == routeExtra {
		name = methods[methodIndex(r.Method)] + " " + r.URL.Path
	}
	return in.tracer.Start(ctx, name, in.startOpts...)
}

// record ends the span and records the request's metrics.
func (in *instruments) record(ctx context.Context, span trace.Span, r *http.Request, route routeID, path string, rec record, start time.Time) {
	// Only a sampled span's context can give an exemplar; any other context
	// would only make the exemplar filter walk the request's context chain.
	mctx := context.Background()
	if span != nil {
		if span.IsRecording() {
			span.SetAttributes(in.spanAttributes(r, route, path, rec)...)
			if rec.status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(rec.status))
			}
		}
		if span.SpanContext().IsSampled() {
			mctx = ctx
		}
		span.End()
	}
	if !in.metricsOn {
		return
	}
	set := in.attrs(r, route, path, rec.status)
	in.duration.Record(mctx, time.Since(start).Seconds(), set.opt...)
	in.respSize.Record(mctx, rec.written, set.opt...)
	if rec.requestBytes > 0 || r.Method == http.MethodPost || r.Method == http.MethodPut {
		in.reqSize.Record(mctx, rec.requestBytes, set.opt...)
	}
}

// attrs returns the cached attribute set for this answer, building it on first use.
func (in *instruments) attrs(r *http.Request, route routeID, path string, status int) *attrSet {
	mi, si := methodIndex(r.Method), statusIndex(status)
	scheme, proto := 0, 0
	if r.TLS != nil {
		scheme = 1
	}
	if r.ProtoMajor == 2 {
		proto = 1
	}
	cacheable := route != routeExtra && si < len(statuses)
	var slot *atomic.Pointer[attrSet]
	if cacheable {
		idx := (((mi*int(numRoutes)+int(route))*numStatuses+si)*numSchemes+scheme)*numProtos + proto
		slot = &in.sets[idx]
		if set := slot.Load(); set != nil {
			return set
		}
	}
	kvs := []attribute.KeyValue{
		attribute.String("http.request.method", methods[mi]),
		attribute.String("url.scheme", [...]string{"http", "https"}[scheme]),
		attribute.Int("http.response.status_code", status),
		// network.protocol.name is left out: semconv wants it only when it is not "http",
		// and the SDK walks every attribute on every Record.
		attribute.String("network.protocol.version", [...]string{"1.1", "2"}[proto]),
	}
	switch route {
	case routeExtra:
		kvs = append(kvs, attribute.String("http.route", path))
	case routeOther:
	default:
		kvs = append(kvs, attribute.String("http.route", routeNames[route]))
	}
	if status >= http.StatusInternalServerError {
		kvs = append(kvs, attribute.String("error.type", strconv.Itoa(status)))
	}
	as := attribute.NewSet(kvs...)
	set := &attrSet{opt: []metric.RecordOption{metric.WithAttributeSet(as)}}
	if slot != nil {
		slot.Store(set)
	}
	return set
}

// spanAttributes are built only for recorded spans, so their cost is paid
// by sampled requests alone.
func (in *instruments) spanAttributes(r *http.Request, route routeID, path string, rec record) []attribute.KeyValue {
	// Sized for every attribute at once: the SDK copies them, so this slice
	// is garbage after SetAttributes and must not grow on the way.
	kvs := make([]attribute.KeyValue, 0, 8)
	kvs = append(kvs,
		attribute.String("http.request.method", r.Method),
		attribute.String("url.path", path),
		attribute.Int("http.response.status_code", rec.status),
		attribute.Int64("http.response.body.size", rec.written),
		attribute.String("client.address", r.RemoteAddr),
		attribute.String("network.protocol.version", [...]string{"1.1", "2"}[min(max(r.ProtoMajor-1, 0), 1)]),
	)
	if rec.requestBytes > 0 {
		kvs = append(kvs, attribute.Int64("http.request.body.size", rec.requestBytes))
	}
	if n := routeNames[route]; n != "" {
		kvs = append(kvs, attribute.String("http.route", n))
	} else if route == routeExtra {
		kvs = append(kvs, attribute.String("http.route", path))
	}
	return kvs
}

// headerCarrier is propagation.HeaderCarrier without the allocation: the
// propagators ask for lower-case keys, and http.Header.Get builds their
// canonical form anew on every call, three times per traced request.
type headerCarrier http.Header

var (
	_ propagation.TextMapCarrier = headerCarrier{}
	_ propagation.ValuesGetter   = headerCarrier{}
)

// canonical returns the header name net/http stores key under.
func canonical(key string) string {
	switch key {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(key)
}

// Get returns the first value of key.
func (h headerCarrier) Get(key string) string {
	if v := h[canonical(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values returns every value of key.
func (h headerCarrier) Values(key string) []string { return h[canonical(key)] }

// Set replaces the values of key.
func (h headerCarrier) Set(key, value string) { h[canonical(key)] = []string{value} }

// Keys lists the header names.
func (h headerCarrier) Keys() []string { return propagation.HeaderCarrier(h).Keys() }
