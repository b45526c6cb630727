package telemetry

import (
	"math"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// maxExportPoints bounds the data points of one metric export request. At
// 10,000 checks one collection holds about 50,000 points, a 14 MB OTLP
// message: over gRPC's default 4 MiB receive limit, which the Collector's
// OTLP receiver keeps unless max_recv_msg_size_mib is raised, and turned into
// protobuf all at once it more than doubled the process's peak memory. A
// histogram point with its bucket counts and a check's attributes is a few
// hundred bytes, so a part stays near 1 MB.
const maxExportPoints = 4000

// splitMetrics calls export with consecutive parts of rm, each holding at
// most max data points and rm's resource; together they hold every point of
// rm once, in order. It stops at the first error export returns.
func splitMetrics(rm *metricdata.ResourceMetrics, max int, export func(part *metricdata.ResourceMetrics, points int) error) error {
	part := &metricdata.ResourceMetrics{Resource: rm.Resource}
	room := max
	flush := func() error {
		if len(part.ScopeMetrics) == 0 {
			return nil
		}
		err := export(part, max-room)
		part, room = &metricdata.ResourceMetrics{Resource: rm.Resource}, max
		return err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			data, left := m.Data, pointCount(m.Data)
			if left == 0 {
				// No points (or an aggregation this file does not know): as the SDK sent it.
				addMetric(part, sm, m, data)
				continue
			}
			for left > 0 {
				if room == 0 {
					if err := flush(); err != nil {
						return err
					}
				}
				head, rest, n := takePoints(data, room)
				addMetric(part, sm, m, head)
				room, left, data = room-n, left-n, rest
			}
		}
	}
	return flush()
}

// addMetric appends m with data to part, under sm's scope.
func addMetric(part *metricdata.ResourceMetrics, sm metricdata.ScopeMetrics, m metricdata.Metrics, data metricdata.Aggregation) {
	if n := len(part.ScopeMetrics); n == 0 || part.ScopeMetrics[n-1].Scope != sm.Scope {
		part.ScopeMetrics = append(part.ScopeMetrics, metricdata.ScopeMetrics{Scope: sm.Scope})
	}
	last := &part.ScopeMetrics[len(part.ScopeMetrics)-1]
	m.Data = data
	last.Metrics = append(last.Metrics, m)
}

// pointCount is the number of data points in data.
func pointCount(data metricdata.Aggregation) int {
	_, _, n := takePoints(data, math.MaxInt)
	return n
}

// takePoints splits data into its first n points and the rest; taken is how
// many the first part holds. An aggregation it does not know has no points.
func takePoints(data metricdata.Aggregation, n int) (head, rest metricdata.Aggregation, taken int) {
	switch d := data.(type) {
	case metricdata.Gauge[int64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.Gauge[float64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.Sum[int64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.Sum[float64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.Histogram[int64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.Histogram[float64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.ExponentialHistogram[int64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.ExponentialHistogram[float64]:
		return split(&d, &d.DataPoints, n)
	case metricdata.Summary:
		return split(&d, &d.DataPoints, n)
	}
	return data, nil, 0
}

// split is d with its first n points, and d with the rest; points is d's
// slice of them.
func split[A any, P any](d *A, points *[]P, n int) (head, rest A, taken int) {
	h, r, taken := cut(*points, n)
	*points = h
	head = *d
	*points = r
	return head, *d, taken
}

// cut splits dps after at most n elements; the head's capacity ends with it,
// so nothing appended to one part can overwrite the next.
func cut[T any](dps []T, n int) (head, rest []T, taken int) {
	k := min(n, len(dps))
	return dps[:k:k], dps[k:], k
}
