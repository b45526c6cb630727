package main

import (
	"context"
	"math"
	"sync/atomic"

	"go.opentelemetry.io/otel/metric"
)

// quantiles is a lock-free log-bucketed histogram: 16 buckets per octave
// from 1 µs, so a quantile is known within 4.4 %.
type quantiles struct {
	counts  [64 * subBuckets]atomic.Uint64
	n       atomic.Uint64
	maxBits atomic.Uint64
}

const subBuckets = 16

func (q *quantiles) add(v float64) {
	us := v * 1e6
	i := 0
	if us > 1 {
		i = int(math.Log2(us) * subBuckets)
		if i >= len(q.counts) {
			i = len(q.counts) - 1
		}
	}
	q.counts[i].Add(1)
	q.n.Add(1)
	for {
		old := q.maxBits.Load()
		if math.Float64frombits(old) >= v || q.maxBits.CompareAndSwap(old, math.Float64bits(v)) {
			return
		}
	}
}

// quantile returns the upper bound of the bucket holding q, in seconds.
func (q *quantiles) quantile(p float64) float64 {
	rank := uint64(math.Ceil(p * float64(q.n.Load())))
	var seen uint64
	for i := range q.counts {
		seen += q.counts[i].Load()
		if seen >= rank && seen > 0 {
			return math.Exp2(float64(i+1)/subBuckets) / 1e6
		}
	}
	return math.NaN()
}

func (q *quantiles) max() float64 { return math.Float64frombits(q.maxBits.Load()) }

// tee watches what the runner records on the production providers: the
// lateness and probe duration histograms and the run counter, so the
// benchmark reads its figures in-process while every point still goes
// through the SDK and out over OTLP.
type tee struct {
	lateness, duration quantiles
	runs               map[string]*atomic.Int64
}

func newTee() *tee {
	return &tee{runs: map[string]*atomic.Int64{"success": {}, "failure": {}, "skipped": {}}}
}

type teeProvider struct {
	metric.MeterProvider
	t *tee
}

func (p teeProvider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return teeMeter{Meter: p.MeterProvider.Meter(name, opts...), t: p.t}
}

type teeMeter struct {
	metric.Meter
	t *tee
}

func (m teeMeter) Float64Histogram(name string, opts ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	h, err := m.Meter.Float64Histogram(name, opts...)
	if err != nil {
		return h, err
	}
	switch name {
	case "heartbeat.scheduler.lateness":
		return teeHist{Float64Histogram: h, q: &m.t.lateness}, nil
	case "http.client.request.duration":
		return teeHist{Float64Histogram: h, q: &m.t.duration}, nil
	}
	return h, nil
}

func (m teeMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	c, err := m.Meter.Int64Counter(name, opts...)
	if err != nil || name != "probe.runs" {
		return c, err
	}
	return teeCounter{Int64Counter: c, t: m.t}, nil
}

type teeHist struct {
	metric.Float64Histogram
	q *quantiles
}

func (h teeHist) Record(ctx context.Context, v float64, opts ...metric.RecordOption) {
	h.q.add(v)
	h.Float64Histogram.Record(ctx, v, opts...)
}

type teeCounter struct {
	metric.Int64Counter
	t *tee
}

func (c teeCounter) Add(ctx context.Context, v int64, opts ...metric.AddOption) {
	set := metric.NewAddConfig(opts).Attributes()
	if o, ok := set.Value("outcome"); ok {
		if n := c.t.runs[o.AsString()]; n != nil {
			n.Add(v)
		}
	}
	c.Int64Counter.Add(ctx, v, opts...)
}
