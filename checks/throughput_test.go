package checks

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// Throughput runs take one slot among themselves, whatever the concurrency
// limit, each_address runs included; other checks run beside them. Their
// transfers reach the counters, the span and /status.
func TestThroughputRunsNeverOverlap(t *testing.T) {
	var active, most, runs atomic.Int32
	p := func(ctx context.Context, tg probe.Target) probe.Result {
		if tg.Check.Type != config.TypeThroughput {
			return probe.Result{Success: true}
		}
		n := active.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		runs.Add(1)
		time.Sleep(20 * time.Millisecond) // room for an overlap, were one allowed
		active.Add(-1)
		return probe.Result{Success: true, Transfers: []probe.Transfer{
			{Direction: probe.DirectionReceive, Bytes: 1000, Duration: time.Millisecond, Requests: 1},
			{Direction: probe.DirectionTransmit, Bytes: 3000, Duration: 2 * time.Millisecond, Requests: 1},
		}}
	}
	h := newHarness(t, func(s *Settings) { s.MaxConcurrent = 32 }, p)
	tput := func(name, target string, each bool) config.Check {
		return config.Check{Name: name, Type: config.TypeThroughput, Target: target, EachAddress: each}
	}
	h.apply(tput("a", "http://127.0.0.1:1", false), tput("b", "http://127.0.0.1:2", false),
		tput("c", "http://127.0.0.1:3", false), tput("d", "http://[::1]:4", true),
		config.Check{Name: "web", Type: config.TypeHTTP, Target: "http://127.0.0.1:5/"})

	var wg sync.WaitGroup
	for _, c := range h.r.snapshot() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.r.execute(context.Background(), c, time.Now())
		}()
	}
	wg.Wait()
	if runs.Load() != 4 || most.Load() != 1 {
		t.Fatalf("%d throughput runs, at most %d at once; want 4, one at a time", runs.Load(), most.Load())
	}

	rm := h.metrics()
	for _, tc := range []struct {
		dir   string
		bytes int64
		secs  float64
	}{{"receive", 1000, 0.001}, {"transmit", 3000, 0.002}} {
		want := map[string]string{"check.name": "a", "network.io.direction": tc.dir}
		if got := counterSum(rm, "probe.throughput.io", want); got != tc.bytes {
			t.Errorf("probe.throughput.io %s = %d, want %d", tc.dir, got, tc.bytes)
		}
		if got := floatSum(rm, "probe.throughput.time", want); got != tc.secs {
			t.Errorf("probe.throughput.time %s = %v, want %v", tc.dir, got, tc.secs)
		}
	}
	st := h.status("a")
	if st.ReceiveBitsPerSecond != 8e6 || st.TransmitBitsPerSecond != 12e6 {
		t.Errorf("status rates %v / %v, want 8e6 / 12e6", st.ReceiveBitsPerSecond, st.TransmitBitsPerSecond)
	}
	found := false
	for _, s := range h.spans.Ended() {
		if s.Name() != "probe a" {
			continue
		}
		for _, kv := range s.Attributes() {
			if kv.Key == "heartbeat.throughput.receive.bits_per_second" && kv.Value.AsFloat64() == 8e6 {
				found = true
			}
		}
	}
	if !found {
		t.Error("no span of check a with heartbeat.throughput.receive.bits_per_second = 8e6")
	}
}

// floatSum adds the points of float counter name whose attributes include want.
func floatSum(rm metricdata.ResourceMetrics, name string, want map[string]string) float64 {
	m, ok := findMetric(rm, name)
	if !ok {
		return 0
	}
	var n float64
	for _, dp := range m.Data.(metricdata.Sum[float64]).DataPoints {
		if attrsMatch(dp.Attributes, want) {
			n += dp.Value
		}
	}
	return n
}
