package checks

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// Throughput telemetry follows the tailscale prober: two counters per
// direction, bytes moved and seconds spent moving them, so the rate over
// any window is the ratio of their rates; the last run's rate goes on its
// span and into /status.
type throughputInstruments struct {
	bytes metric.Int64Counter
	time  metric.Float64Counter
}

func newThroughputInstruments(m metric.Meter) (throughputInstruments, error) {
	var (
		in  throughputInstruments
		err error
	)
	if in.bytes, err = m.Int64Counter("probe.throughput.io", metric.WithUnit("By"),
		metric.WithDescription("Bytes moved by throughput checks, by network.io.direction.")); err != nil {
		return in, err
	}
	in.time, err = m.Float64Counter("probe.throughput.time", metric.WithUnit("s"),
		metric.WithDescription("Time throughput checks spent moving bytes (transfer alone), by network.io.direction."))
	return in, err
}

// recordTransfers adds a run's transfers, whole or cut short, to the counters.
func (in *instruments) recordTransfers(ctx context.Context, s *series, res probe.Result) {
	for _, tr := range res.Transfers {
		opt := metric.WithAttributeSet(attribute.NewSet(s.kvs(semconv.NetworkIODirectionKey.String(tr.Direction))...))
		in.throughput.bytes.Add(ctx, tr.Bytes, opt)
		in.throughput.time.Add(ctx, tr.Duration.Seconds(), opt)
	}
}

// transferAttrs are the span attributes of a run's rates.
func transferAttrs(res probe.Result) []attribute.KeyValue {
	var kvs []attribute.KeyValue
	for _, tr := range res.Transfers {
		prefix := "heartbeat.throughput." + tr.Direction
		kvs = append(kvs,
			attribute.Float64(prefix+".bits_per_second", tr.BitsPerSecond()),
			attribute.Int64(prefix+".bytes", tr.Bytes))
	}
	return kvs
}

// setThroughput keeps the last run's rates for /status; runs without
// transfers (other types, failures before any byte) clear them.
func (st *SeriesStatus) setThroughput(res probe.Result) {
	st.ReceiveBitsPerSecond, st.TransmitBitsPerSecond = 0, 0
	for _, tr := range res.Transfers {
		switch tr.Direction {
		case probe.DirectionReceive:
			st.ReceiveBitsPerSecond = tr.BitsPerSecond()
		case probe.DirectionTransmit:
			st.TransmitBitsPerSecond = tr.BitsPerSecond()
		}
	}
}

// acquireExclusive waits for the one slot exclusive checks share, so that
// two throughput runs never split a link between them.
func (r *Runner) acquireExclusive(ctx context.Context) bool { return take(ctx, r.exclusive) }

// take fills one slot of sem, waiting until one is free or ctx ends.
func take(ctx context.Context, sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *Runner) releaseExclusive() { <-r.exclusive }
