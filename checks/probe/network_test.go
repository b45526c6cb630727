package probe

// The icmp and mtu probers against the kernel's network stack: a lab of
// namespaces (internal/netlab), skipped when not root and required under
// CI=true; loopback where no lab is needed.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/icmp"
	"github.com/heartbeat-sidecar/heartbeat/internal/netlab"
)

func networkCheck(typ, target string, mod func(*config.Check)) *config.Check {
	c := &config.Check{Name: typ, Type: typ, Target: target, Timeout: 10 * time.Second}
	if mod != nil {
		mod(c)
	}
	c.ApplyDefaults()
	return c
}

// runIn runs check c once from inside ns.
func runIn(t *testing.T, ns *netlab.Namespace, c *config.Check) Result {
	t.Helper()
	f, ok := Lookup(c.Type)
	if !ok {
		t.Fatalf("no prober for %s", c.Type)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout)
	defer cancel()
	var res Result
	if err := ns.Do(func() error { res = Run(ctx, f, Target{Check: c}); return nil }); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s: success %v %s %q", c.Type, c.Target, res.Success, res.ErrorType, res.Message)
	return res
}

func TestLabICMPProber(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400}, "iptables")
	target := p.TargetV4.String()

	res := runIn(t, p.Prober, networkCheck(config.TypeICMP, target, nil))
	if !res.Success || res.Echo == nil || res.Echo.Received != config.DefaultICMPCount ||
		!strings.Contains(res.Message, "3/3 replies, 0.0% loss") || res.Peer.Addr() != p.TargetV4 {
		t.Errorf("clean path: %+v", res)
	}
	if res := runIn(t, p.Prober, networkCheck(config.TypeICMP, p.TargetV6.String(), nil)); !res.Success {
		t.Errorf("IPv6: %+v", res)
	}

	df := networkCheck(config.TypeICMP, target, func(c *config.Check) { c.ICMP.Size, c.ICMP.DontFragment = 1420, true })
	if res := runIn(t, p.Prober, df); res.ErrorType != ErrPacketTooBig || !strings.Contains(res.Reason, "next-hop MTU 1400") {
		t.Errorf("DF echo over the 1400 hop: %s %q, want packet_too_big naming MTU 1400", res.ErrorType, res.Reason)
	}
	if res := runIn(t, p.Prober, networkCheck(config.TypeICMP, "10.201.9.9", nil)); res.ErrorType != ErrUnreachable {
		t.Errorf("unrouted address: %s %q, want unreachable", res.ErrorType, res.Reason)
	}
	short := networkCheck(config.TypeICMP, target, func(c *config.Check) { c.Timeout = 500 * time.Millisecond })
	p.Target.IPTables("-A", "INPUT", "-p", "icmp", "-j", "DROP")
	if res := runIn(t, p.Prober, short); res.ErrorType != ErrNoReply || res.Echo == nil || res.Echo.Loss() != 1 {
		t.Errorf("target dropping ICMP: %+v, want no_reply with 100 %% loss", res)
	}
}

// TestLabICMPProberMaxLoss: the router drops every other echo request
// (iptables nth), so loss is exactly 50 %: above a max_loss of 0.4, within 0.6.
func TestLabICMPProberMaxLoss(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500}, "iptables")
	p.Router.IPTables("-A", "FORWARD", "-p", "icmp", "--icmp-type", "echo-request",
		"-m", "statistic", "--mode", "nth", "--every", "2", "--packet", "0", "-j", "DROP")
	check := func(maxLoss float64) Result {
		return runIn(t, p.Prober, networkCheck(config.TypeICMP, p.TargetV4.String(), func(c *config.Check) {
			c.Timeout, c.ICMP.Count, c.ICMP.Spacing, c.ICMP.MaxLoss = time.Second, 10, time.Millisecond, maxLoss
		}))
	}
	if res := check(0.4); res.ErrorType != ErrPacketLoss || !strings.Contains(res.Reason, "50.0% loss") {
		t.Errorf("max_loss 0.4: %s %q, want packet_loss at 50 %%", res.ErrorType, res.Reason)
	}
	if res := check(0.6); !res.Success || res.Echo.Loss() != 0.5 {
		t.Errorf("max_loss 0.6: %+v, want success at 50 %% loss", res)
	}
}

func TestLabMTUProber(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400})
	target := p.TargetV4.String()
	res := runIn(t, p.Prober, networkCheck(config.TypeMTU, target, nil))
	want := fmt.Sprintf("path MTU 1400 bytes (fragmentation needed from %s, next-hop MTU 1400)", p.RouterV4)
	if !res.Success || res.PathMTU == nil || res.PathMTU.MTU != 1400 || !strings.Contains(res.Message, want) {
		t.Errorf("1500/1400 path: %+v; want %q", res, want)
	}
	if res.PathMTU != nil && res.PathMTU.Tried[len(res.PathMTU.Tried)-1] != "1420 frag_needed 1400" {
		t.Errorf("sizes tried %v, want the last to be 1420 frag_needed 1400", res.PathMTU.Tried)
	}
	below := networkCheck(config.TypeMTU, target, func(c *config.Check) { c.MTU.MinMTU = 1450 })
	if res := runIn(t, p.Prober, below); res.ErrorType != ErrMTUBelowMin || res.PathMTU.MTU != 1400 {
		t.Errorf("min_mtu 1450: %s %q, want mtu_below_min with 1400 measured", res.ErrorType, res.Reason)
	}
}

func TestLabMTUProberBlackHole(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400}, "iptables")
	p.Router.IPTables("-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP")
	res := runIn(t, p.Prober, networkCheck(config.TypeMTU, p.TargetV4.String(), func(c *config.Check) {
		c.MTU.Tries, c.MTU.Wait = 2, 200*time.Millisecond
	}))
	if res.ErrorType != ErrBlackHole || res.PathMTU == nil || res.PathMTU.MTU != 1400 || !strings.Contains(res.Reason, "above 1400 bytes") {
		t.Errorf("black hole: %+v, want black_hole above 1400 bytes", res)
	}
	// A timeout too short to finish the binary search still reports the
	// black hole, saying which sizes went untried.
	res = runIn(t, p.Prober, networkCheck(config.TypeMTU, p.TargetV4.String(), func(c *config.Check) {
		c.Timeout, c.MTU.Tries, c.MTU.Wait = 1500*time.Millisecond, 2, 200*time.Millisecond
	}))
	if res.ErrorType != ErrBlackHole || !res.PathMTU.CutShort || !strings.Contains(res.Reason, "the timeout cut the search short: 1401 to") {
		t.Errorf("black hole, short timeout: %s %q, want black_hole naming the untried sizes", res.ErrorType, res.Reason)
	}
}

// TestICMPProberLoopback needs no lab: loopback answers when this process
// may open an ICMP socket; otherwise the run fails with error.type
// permission and the fix.
func TestICMPProberLoopback(t *testing.T) {
	for _, typ := range []string{config.TypeICMP, config.TypeMTU} {
		res := Run(context.Background(), probeFor(t, typ), Target{Check: networkCheck(typ, "127.0.0.1", nil)})
		switch {
		case res.ErrorType == ErrPermission:
			if !strings.Contains(res.Reason, "ping_group_range") {
				t.Errorf("%s: permission failure %q names no fix", typ, res.Reason)
			}
		case !res.Success:
			t.Errorf("%s: %s %q", typ, res.ErrorType, res.Reason)
		case typ == config.TypeMTU && res.PathMTU.MTU != 9000:
			t.Errorf("loopback path MTU %d, want the ladder's top, 9000", res.PathMTU.MTU)
		}
	}
}

func probeFor(t *testing.T, typ string) ProbeFunc {
	f, ok := Lookup(typ)
	if !ok {
		t.Fatalf("no prober for %s", typ)
	}
	return f
}

func TestICMPFailureTypes(t *testing.T) {
	for err, want := range map[error]string{
		fmt.Errorf("x: %w", icmp.ErrPermission):               ErrPermission,
		fmt.Errorf("x: %w", icmp.ErrNoReply):                  ErrNoReply,
		fmt.Errorf("x: %w", icmp.ErrUnreachable):              ErrUnreachable,
		fmt.Errorf("x: %w", icmp.ErrTimeExceeded):             ErrTTLExceeded,
		&icmp.TooBigError{Size: 1500, MTU: 1400, Local: true}: ErrPacketTooBig,
		context.DeadlineExceeded:                              ErrTimeout,
		syscall.EINVAL:                                        ErrOther,
	} {
		if got := classifyError(icmpFailure(err)); got != want {
			t.Errorf("%v: %s, want %s", err, got, want)
		}
	}
	if !errors.Is(icmpFailure(icmp.ErrNoReply), icmp.ErrNoReply) {
		t.Errorf("the engine's error is not kept")
	}
}
