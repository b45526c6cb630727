package telemetry

import "go.opentelemetry.io/otel/sdk/metric/metricdata"

// maxExportPoints bounds the data points of one metric export request (the
// periodic reader's batch size). At 10,000 checks one collection holds about
// 50,000 points, a 14 MB OTLP message: over gRPC's default 4 MiB receive
// limit, which the Collector's OTLP receiver keeps unless
// max_recv_msg_size_mib is raised, and turned into protobuf all at once it
// more than doubled the process's peak memory. A histogram point with its
// bucket counts and a check's attributes is a few hundred bytes, so a batch
// stays near 1 MB.
const maxExportPoints = 4000

// pointCount is the number of data points in data; an aggregation this
// file does not know has none.
func pointCount(data metricdata.Aggregation) int {
	switch d := data.(type) {
	case metricdata.Gauge[int64]:
		return len(d.DataPoints)
	case metricdata.Gauge[float64]:
		return len(d.DataPoints)
	case metricdata.Sum[int64]:
		return len(d.DataPoints)
	case metricdata.Sum[float64]:
		return len(d.DataPoints)
	case metricdata.Histogram[int64]:
		return len(d.DataPoints)
	case metricdata.Histogram[float64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[int64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[float64]:
		return len(d.DataPoints)
	case metricdata.Summary:
		return len(d.DataPoints)
	}
	return 0
}

// resourcePoints is the number of data points in rm.
func resourcePoints(rm *metricdata.ResourceMetrics) int {
	n := 0
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			n += pointCount(m.Data)
		}
	}
	return n
}
