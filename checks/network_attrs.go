package checks

import (
	"go.opentelemetry.io/otel/attribute"

	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// networkAttrs are the span attributes of icmp and mtu runs: the burst's
// packet counts, loss and round-trip statistics (seconds), and the path MTU
// search's result with every size tried.
func networkAttrs(res probe.Result) []attribute.KeyValue {
	var kvs []attribute.KeyValue
	if e := res.Echo; e != nil {
		kvs = append(kvs,
			attribute.String("icmp.socket", e.Socket),
			attribute.Int("icmp.packets.sent", e.Sent),
			attribute.Int("icmp.packets.received", e.Received),
			attribute.Int("icmp.packets.duplicates", e.Duplicates),
			attribute.Float64("icmp.loss", e.Loss()))
		if e.Received > 0 {
			kvs = append(kvs,
				attribute.Float64("icmp.rtt.min", e.Min.Seconds()),
				attribute.Float64("icmp.rtt.avg", e.Avg.Seconds()),
				attribute.Float64("icmp.rtt.max", e.Max.Seconds()),
				attribute.Float64("icmp.rtt.stddev", e.StdDev.Seconds()))
		}
	}
	if m := res.PathMTU; m != nil {
		kvs = append(kvs, attribute.String("mtu.mode", m.Mode), attribute.StringSlice("mtu.sizes_tried", m.Tried))
		if m.MTU > 0 {
			kvs = append(kvs, attribute.Int("mtu.path_mtu", m.MTU))
		}
		if m.Largest > 0 {
			kvs = append(kvs, attribute.Int("mtu.largest_response", m.Largest))
		}
		if m.Limit != "" {
			kvs = append(kvs, attribute.String("mtu.limit", m.Limit))
		}
		if m.NextHop > 0 {
			kvs = append(kvs, attribute.Int("mtu.next_hop_mtu", m.NextHop))
		}
		if m.CutShort {
			kvs = append(kvs, attribute.Bool("mtu.cut_short", true))
		}
	}
	return kvs
}
