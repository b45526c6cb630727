package probe

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/netlab"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// labRate is the tbf rate the router shapes each direction to.
const labRate = 50e6

// shapedPath is prober ↔ router ↔ target with the router's egress towards
// each end limited to labRate by tbf, and the real payload server on the
// target; it returns the server's address.
func shapedPath(t *testing.T) (*netlab.Path, string) {
	t.Helper()
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500}, "tc")
	bin := testkit.Heartbeat(t)
	addr := p.Target.ServeHeartbeat(bin, p.TargetV4)
	// eth0 faces the prober (downloads leave through it), eth1 the target
	// (uploads). The bucket is small (32 KiB, under 0.4 % of a run), so
	// bursts barely skew a run; the queue holds 100 ms of traffic.
	for _, ifname := range []string{"eth0", "eth1"} {
		p.Router.TC("qdisc", "add", "dev", ifname, "root", "tbf", "rate", "50mbit", "burst", "32kb", "latency", "100ms")
	}
	return p, addr
}

// Download and upload through a 50 Mbit/s tbf each measure within ±10 %.
// tbf counts whole Ethernet frames, so TCP goodput sits a few per cent
// under the rate (1448 of every 1514 bytes with timestamps). The machine
// is shared and noisy, so the median of five runs is asserted.
func TestThroughputLabShaped(t *testing.T) {
	p, addr := shapedPath(t)
	c := throughputCheck("http://"+addr, config.ThroughputOptions{Bytes: 8 << 20})
	c.Timeout = 30 * time.Second
	rates := map[string][]float64{}
	for range 5 {
		res := runIn(t, p.Prober, c)
		if !res.Success {
			t.Fatalf("%s: %s", res.ErrorType, res.Reason)
		}
		if len(res.Transfers) != 2 {
			t.Fatalf("transfers %+v", res.Transfers)
		}
		for _, tr := range res.Transfers {
			bps := tr.BitsPerSecond()
			rates[tr.Direction] = append(rates[tr.Direction], bps)
			t.Logf("shaped %s: %.2f Mbit/s (%.1f %% of 50 Mbit/s; %d bytes in %v, %d requests, server-timed %v)",
				tr.Direction, bps/1e6, 100*bps/labRate, tr.Bytes, tr.Duration, tr.Requests, tr.ServerTimed)
			// The payload server's default --max-size is 1 MiB: 8 requests.
			if tr.Requests != 8 || tr.Bytes != 8<<20 {
				t.Errorf("%s: %d bytes in %d requests, want 8 MiB in 8", tr.Direction, tr.Bytes, tr.Requests)
			}
		}
		if !res.Transfers[1].ServerTimed {
			t.Error("upload was not timed by the payload server's recv entry")
		}
	}
	for dir, rs := range rates {
		slices.Sort(rs)
		med := rs[len(rs)/2]
		t.Logf("shaped %s median: %.2f Mbit/s (%.1f %%)", dir, med/1e6, 100*med/labRate)
		if math.Abs(med-labRate) > 0.1*labRate {
			t.Errorf("%s: median %.2f Mbit/s, want 50 Mbit/s ± 10 %%", dir, med/1e6)
		}
	}
}

// A run longer than its timeout on the shaped link stops at the deadline
// with transfer_timeout, and its transfers say how far it got, never
// faster than the link. (One run, so its rate is bounded, not matched.)
func TestThroughputLabTimeout(t *testing.T) {
	p, addr := shapedPath(t)
	c := throughputCheck("http://"+addr, config.ThroughputOptions{Direction: config.DirectionDownload, Bytes: 64 << 20})
	c.Timeout = 2 * time.Second
	res := runIn(t, p.Prober, c)
	if res.Success || res.ErrorType != ErrTransferTimeout {
		t.Fatalf("%s: %s, want %s", res.ErrorType, res.Reason, ErrTransferTimeout)
	}
	if len(res.Transfers) != 1 {
		t.Fatalf("transfers %+v", res.Transfers)
	}
	tr := res.Transfers[0]
	// About 2 s at under 50 Mbit/s: well short of 64 MiB, well above nothing.
	if tr.Bytes < 3<<20 || tr.Bytes > 14<<20 {
		t.Errorf("%d bytes before the deadline, want about 12 MB", tr.Bytes)
	}
	if bps := tr.BitsPerSecond(); bps < 0.5*labRate || bps > 1.1*labRate {
		t.Errorf("rate of the partial transfer %.2f Mbit/s, want 25 to 55", bps/1e6)
	}
	if !strings.Contains(res.Reason, "of 67108864 bytes received") {
		t.Errorf("reason %q", res.Reason)
	}
	t.Logf("timeout: %s", res.Reason)
}

// each_address: the run dials the resolved address, whatever the host.
func TestThroughputEachAddress(t *testing.T) {
	addr := netip.MustParseAddrPort(startPayloadServer(t))
	c := throughputCheck("http://peer.invalid:1/", config.ThroughputOptions{Bytes: 100000})
	res := runProbe(t, nil, Target{Check: c, Address: addr})
	if !res.Success || res.Peer != addr || len(res.Transfers) != 2 {
		t.Fatalf("%s: %s; peer %v, transfers %+v", res.ErrorType, res.Reason, res.Peer, res.Transfers)
	}
}
