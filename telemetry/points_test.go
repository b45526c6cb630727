package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

// TestPointCount: the guard counts what an export carries, over every
// aggregation the SDK emits.
func TestPointCount(t *testing.T) {
	dp := metricdata.DataPoint[int64]{Value: 1}
	rm := &metricdata.ResourceMetrics{ScopeMetrics: []metricdata.ScopeMetrics{
		{Scope: instrumentation.Scope{Name: "a"}, Metrics: []metricdata.Metrics{
			{Name: "gauge", Data: metricdata.Gauge[int64]{DataPoints: []metricdata.DataPoint[int64]{dp, dp}}},
			{Name: "empty", Data: metricdata.Gauge[float64]{}},
			{Name: "sum", Data: metricdata.Sum[float64]{DataPoints: make([]metricdata.DataPoint[float64], 3)}},
			{Name: "hist", Data: metricdata.Histogram[float64]{DataPoints: make([]metricdata.HistogramDataPoint[float64], 4)}},
		}},
		{Scope: instrumentation.Scope{Name: "b"}, Metrics: []metricdata.Metrics{
			{Name: "exp", Data: metricdata.ExponentialHistogram[int64]{DataPoints: make([]metricdata.ExponentialHistogramDataPoint[int64], 5)}},
			{Name: "summary", Data: metricdata.Summary{DataPoints: make([]metricdata.SummaryDataPoint, 6)}},
			{Name: "none"},
		}},
	}}
	if got := resourcePoints(rm); got != 2+3+4+5+6 {
		t.Errorf("%d points counted, want 20", got)
	}
}

// TestLargeCollectionCrossesTheWireInParts records more series than one
// export request may carry and checks that every point arrives, in requests
// the receiver's default 4 MiB limit accepts.
func TestLargeCollectionCrossesTheWireInParts(t *testing.T) {
	r := otlptest.Start(t)
	setEnv(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": r.URL(), "OTEL_TRACES_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"})
	p, err := Setup(context.Background(), Options{Logger: testkit.DiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	shutdownOnCleanup(t, p)
	h, err := p.MeterProvider.Meter("test").Float64Histogram("test.duration", metric.WithUnit("s"))
	if err != nil {
		t.Fatal(err)
	}
	const series = 2*maxExportPoints + 500
	for i := range series {
		h.Record(context.Background(), 0.01, metric.WithAttributes(attribute.Int("check", i)))
	}
	if err := flush(p); err != nil {
		t.Fatal(err)
	}
	points := 0
	for _, m := range r.Metrics() {
		if m.Name() == "test.duration" {
			points += m.Histogram().DataPoints().Len()
		}
	}
	// The self-metrics ride along: at least three requests for the histogram's parts.
	if points != series || r.Requests() < 3 {
		t.Errorf("%d points in %d requests, want %d in at least 3", points, r.Requests(), series)
	}
}
