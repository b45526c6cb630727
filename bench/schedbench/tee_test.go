package main

import (
	"context"
	"math"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

func TestQuantilesWithinABucket(t *testing.T) {
	var q quantiles
	for i := 1; i <= 1000; i++ {
		q.add(float64(i) / 1000) // 1 ms … 1 s
	}
	for _, c := range []struct{ p, want float64 }{{0.5, 0.5}, {0.99, 0.99}} {
		got := q.quantile(c.p)
		if got < c.want || got > c.want*math.Exp2(1.0/subBuckets)*1.001 {
			t.Errorf("p%v = %v, want within one bucket above %v", c.p*100, got, c.want)
		}
	}
	if q.max() != 1 {
		t.Errorf("max = %v, want 1", q.max())
	}
}

// TestTeePassesEveryPointOn checks that the SDK still gets what the tee saw.
func TestTeePassesEveryPointOn(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	tee := newTee()
	meter := teeProvider{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)), t: tee}.Meter("test")
	lat, _ := meter.Float64Histogram("heartbeat.scheduler.lateness")
	runs, _ := meter.Int64Counter("probe.runs")
	ctx := context.Background()
	lat.Record(ctx, 0.002)
	runs.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "success"))))
	runs.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", "failure"))))
	if tee.lateness.n.Load() != 1 || tee.runs["success"].Load() != 1 || tee.runs["failure"].Load() != 1 {
		t.Errorf("tee saw lateness %d, runs %d/%d", tee.lateness.n.Load(), tee.runs["success"].Load(), tee.runs["failure"].Load())
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	points := 0
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			points += int(d.DataPoints[0].Count)
		case metricdata.Sum[int64]:
			points += len(d.DataPoints)
		}
	}
	if points != 3 {
		t.Errorf("the SDK got %d points, want 3", points)
	}
}
