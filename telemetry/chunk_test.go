package telemetry

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

func TestSplitMetricsKeepsEveryPointOnceWithinTheBound(t *testing.T) {
	res := resource.NewSchemaless(attribute.String("service.name", "heartbeat"))
	gauge := func(vals ...int64) metricdata.Gauge[int64] {
		var g metricdata.Gauge[int64]
		for _, v := range vals {
			g.DataPoints = append(g.DataPoints, metricdata.DataPoint[int64]{Value: v})
		}
		return g
	}
	hist := metricdata.Histogram[float64]{Temporality: metricdata.CumulativeTemporality}
	for i := range 7 {
		hist.DataPoints = append(hist.DataPoints, metricdata.HistogramDataPoint[float64]{Count: uint64(100 + i)})
	}
	rm := &metricdata.ResourceMetrics{Resource: res, ScopeMetrics: []metricdata.ScopeMetrics{
		{Scope: instrumentation.Scope{Name: "a"}, Metrics: []metricdata.Metrics{
			{Name: "a.one", Data: gauge(1, 2)},
			{Name: "a.empty", Data: gauge()},
			{Name: "a.hist", Data: hist},
		}},
		{Scope: instrumentation.Scope{Name: "b"}, Metrics: []metricdata.Metrics{
			{Name: "b.one", Data: gauge(3, 4, 5)},
		}},
	}}
	const max = 3
	var got []string
	parts := 0
	err := splitMetrics(rm, max, func(part *metricdata.ResourceMetrics, points int) error {
		parts++
		if part.Resource != res {
			t.Error("a part lost the resource")
		}
		n := 0
		for _, sm := range part.ScopeMetrics {
			for _, m := range sm.Metrics {
				switch d := m.Data.(type) {
				case metricdata.Gauge[int64]:
					for _, dp := range d.DataPoints {
						got = append(got, sm.Scope.Name+"/"+m.Name+"="+itoa(dp.Value))
					}
					if len(d.DataPoints) == 0 {
						got = append(got, sm.Scope.Name+"/"+m.Name+"=none")
					}
					n += len(d.DataPoints)
				case metricdata.Histogram[float64]:
					if d.Temporality != metricdata.CumulativeTemporality {
						t.Error("temporality lost")
					}
					for _, dp := range d.DataPoints {
						got = append(got, sm.Scope.Name+"/"+m.Name+"="+itoa(int64(dp.Count)))
					}
					n += len(d.DataPoints)
				}
			}
		}
		if n != points || n > max {
			t.Errorf("part %d: %d points, reported %d, bound %d", parts, n, points, max)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/a.one=1", "a/a.one=2", "a/a.empty=none",
		"a/a.hist=100", "a/a.hist=101", "a/a.hist=102", "a/a.hist=103", "a/a.hist=104", "a/a.hist=105", "a/a.hist=106",
		"b/b.one=3", "b/b.one=4", "b/b.one=5"}
	if len(got) != len(want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("point %d = %s, want %s (all: %v)", i, got[i], want[i], got)
		}
	}
	if parts != 4 { // 12 points in parts of at most 3
		t.Errorf("%d parts, want 4", parts)
	}
}

func itoa(v int64) string { return attribute.Int64Value(v).String() }

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
