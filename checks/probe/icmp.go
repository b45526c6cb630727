package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/icmp"
)

// probeICMP sends one burst of echo requests and fails on total loss or
// loss above max_loss.
func probeICMP(ctx context.Context, t Target) Result {
	host := t.Check.Server.Host
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		return doICMP(ctx, t, res, rec)
	}, func(reason string) string { return host + ": " + reason })
}

func doICMP(ctx context.Context, t Target, res *Result, rec *recorder) (string, error) {
	o := t.Check.ICMP
	addr, err := icmpAddress(ctx, t, o.IPVersion, rec)
	if err != nil {
		return "", err
	}
	res.Peer = netip.AddrPortFrom(addr, 0)
	r, err := icmp.Echo(ctx, addr, icmp.EchoOptions{
		Count: o.Count, Interval: o.Spacing, Size: o.Size, DontFragment: o.DontFragment, TTL: o.TTL,
	})
	st := r.Stats()
	res.Echo = &EchoStats{
		Socket: string(r.Socket), Sent: r.Sent, Received: r.Received, Duplicates: r.Duplicates,
		RTTs: r.RTTs, Min: st.Min, Avg: st.Avg, Max: st.Max, StdDev: st.StdDev,
	}
	if err != nil {
		return "", icmpFailure(err)
	}
	stats := fmt.Sprintf("%d/%d replies, %.1f%% loss, rtt min/avg/max/stddev %s/%s/%s/%s",
		r.Received, r.Sent, 100*r.Loss(), fmtRTT(st.Min), fmtRTT(st.Avg), fmtRTT(st.Max), fmtRTT(st.StdDev))
	if r.Duplicates > 0 {
		stats += fmt.Sprintf(", %d duplicates", r.Duplicates)
	}
	if r.Loss() > o.MaxLoss {
		return "", failf(ErrPacketLoss, "%s: above max_loss %.1f%%", stats, 100*o.MaxLoss)
	}
	return addr.String() + ": " + stats, nil
}

// icmpAddress is the address an icmp or mtu run probes: the each_address
// override, the target itself when it is an IP, else the first address of
// the wanted family that the name resolves to.
func icmpAddress(ctx context.Context, t Target, version int, rec *recorder) (netip.Addr, error) {
	if t.Address.IsValid() {
		return t.Address.Addr().Unmap(), nil
	}
	host := t.Check.Server.Host
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), nil
	}
	network := "ip"
	switch version {
	case 4:
		network = "ip4"
	case 6:
		network = "ip6"
	}
	rec.start(PhaseDNS)
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, err
	}
	rec.end(PhaseDNS)
	if len(addrs) == 0 {
		return netip.Addr{}, &net.DNSError{Err: "no " + network + " address", Name: host, IsNotFound: true}
	}
	return addrs[0].Unmap(), nil
}

// icmpFailure gives the engine's errors their error.type; their text says
// what came back (and, for permission, what to set).
func icmpFailure(err error) error {
	var typ string
	switch {
	case errors.Is(err, icmp.ErrPermission):
		typ = ErrPermission
	case errors.Is(err, icmp.ErrNoReply):
		typ = ErrNoReply
	case errors.Is(err, icmp.ErrUnreachable):
		typ = ErrUnreachable
	case errors.Is(err, icmp.ErrTimeExceeded):
		typ = ErrTTLExceeded
	case errors.Is(err, icmp.ErrTooBig):
		typ = ErrPacketTooBig
	default:
		return err
	}
	return &probeError{typ: typ, err: err}
}

// fmtRTT prints a round-trip time to about three significant figures.
func fmtRTT(d time.Duration) string {
	for unit := time.Duration(1); unit < time.Second; unit *= 10 {
		if d < 1000*unit {
			return d.Round(unit).String()
		}
	}
	return d.Round(time.Millisecond).String()
}
