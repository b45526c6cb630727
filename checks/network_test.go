package checks

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// TestNetworkTelemetry: what icmp and mtu runs measured becomes the packet
// counters, the RTT histogram, the path MTU gauge, the status and the span
// attributes. The probers return fixed measurements, so every figure is exact.
func TestNetworkTelemetry(t *testing.T) {
	ms := time.Millisecond
	h := newHarness(t, nil, func(_ context.Context, tg probe.Target) probe.Result {
		res := probe.Result{Start: time.Now(), Duration: 5 * ms, Success: true, Message: "ok",
			Peer: netip.MustParseAddrPort("10.0.0.1:0")}
		switch tg.Check.Type {
		case config.TypeICMP:
			res.Echo = &probe.EchoStats{Socket: "datagram", Sent: 4, Received: 3, Duplicates: 1,
				RTTs: []time.Duration{ms, 2 * ms, 3 * ms}, Min: ms, Avg: 2 * ms, Max: 3 * ms, StdDev: 816 * time.Microsecond}
		case config.TypeMTU:
			res.Success, res.ErrorType, res.Reason = false, probe.ErrBlackHole, "black hole above 1400 bytes"
			res.PathMTU = &probe.PathMTUStats{Mode: "icmp", MTU: 1400, Limit: "lost",
				Tried: []string{"36 passed", "1400 passed", "1420 lost"}}
		}
		return res
	})
	ping := schedCheck("ping", 50*time.Millisecond)
	ping.Type, ping.Target = config.TypeICMP, "10.0.0.1"
	pmtu := schedCheck("pmtu", 50*time.Millisecond)
	pmtu.Type, pmtu.Target = config.TypeMTU, "10.0.0.1"
	h.apply(ping, pmtu)
	h.start()
	testkit.Eventually(t, 10*time.Second, "both checks to run", func() bool {
		return h.status("ping").Runs >= 1 && h.status("pmtu").Runs >= 1
	})
	h.stop()
	rm := h.metrics()
	runs := int64(h.status("ping").Runs)

	pingAttrs := map[string]string{"check.name": "ping", "check.type": "icmp", "server.address": "10.0.0.1"}
	if n := counterSum(rm, "probe.icmp.packets.sent", pingAttrs); n != 4*runs {
		t.Errorf("probe.icmp.packets.sent = %d after %d runs, want %d", n, runs, 4*runs)
	}
	if n := counterSum(rm, "probe.icmp.packets.received", pingAttrs); n != 3*runs {
		t.Errorf("probe.icmp.packets.received = %d after %d runs, want %d", n, runs, 3*runs)
	}
	if p := histPoints(rm, "probe.icmp.rtt", pingAttrs); len(p) != 1 || p[0].Count != uint64(3*runs) ||
		p[0].Sum < 0.006*float64(runs)-1e-9 || p[0].Sum > 0.006*float64(runs)+1e-9 {
		t.Errorf("probe.icmp.rtt = %+v, want %d replies summing to %v s", p, 3*runs, 0.006*float64(runs))
	}
	pmtuSet := []attribute.KeyValue{attribute.String("check.name", "pmtu"), attribute.String("check.type", "mtu"),
		attribute.String("server.address", "10.0.0.1")}
	assertGauge(t, rm, "probe.path_mtu", point(1400, pmtuSet...))
	if st := h.status("ping"); st.Loss == nil || *st.Loss != 0.25 {
		t.Errorf("status loss %v, want 0.25", st.Loss)
	}
	if st := h.status("pmtu"); st.PathMTU != 1400 || st.LastErrorType != probe.ErrBlackHole {
		t.Errorf("status path_mtu %d error %q, want 1400 and black_hole", st.PathMTU, st.LastErrorType)
	}

	want := map[string]map[attribute.Key]attribute.Value{
		"probe ping": {
			"icmp.socket": attribute.StringValue("datagram"), "icmp.packets.sent": attribute.IntValue(4),
			"icmp.packets.received": attribute.IntValue(3), "icmp.packets.duplicates": attribute.IntValue(1),
			"icmp.loss": attribute.Float64Value(0.25), "icmp.rtt.min": attribute.Float64Value(0.001),
			"icmp.rtt.avg": attribute.Float64Value(0.002), "icmp.rtt.max": attribute.Float64Value(0.003),
			"icmp.rtt.stddev": attribute.Float64Value(0.000816),
		},
		"probe pmtu": {
			"mtu.mode": attribute.StringValue("icmp"), "mtu.path_mtu": attribute.IntValue(1400),
			"mtu.limit": attribute.StringValue("lost"), "error.type": attribute.StringValue(probe.ErrBlackHole),
			"mtu.sizes_tried": attribute.StringSliceValue([]string{"36 passed", "1400 passed", "1420 lost"}),
		},
	}
	for name, attrs := range want {
		i := slices.IndexFunc(h.spans.Ended(), func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name })
		if i < 0 {
			t.Errorf("no span %q", name)
			continue
		}
		got := attribute.NewSet(h.spans.Ended()[i].Attributes()...)
		for k, v := range attrs {
			if g, ok := got.Value(k); !ok || g != v {
				t.Errorf("span %q: %s = %v, want %v", name, k, g.String(), v.String())
			}
		}
	}
}
