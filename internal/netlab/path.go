package netlab

import (
	"net/netip"
	"testing"
)

// PathConfig shapes a three-namespace path prober ↔ router ↔ target.
type PathConfig struct {
	// FirstMTU is the MTU of both ends of the prober–router link.
	FirstMTU int
	// SecondMTU is the MTU of the router's end of the router–target link.
	SecondMTU int
	// TargetMTU is the MTU of the target's end of that link; 0 means
	// SecondMTU. A larger value makes the narrow hop invisible to the
	// target's TCP, as an overlay's endpoints often are.
	TargetMTU int
}

// Path is a built prober ↔ router ↔ target path, its addresses only inside its namespaces.
type Path struct {
	*Lab
	Prober, Router, Target *Namespace
	// TargetV4 and TargetV6 are the target's addresses; RouterV4 and
	// RouterV6 are the router's addresses on the prober's side (the source
	// of its ICMP errors).
	TargetV4, TargetV6, RouterV4, RouterV6 netip.Addr
}

// The path's fixed addressing: private ranges, but they exist only inside
// the lab's namespaces, so they can collide with nothing.
var (
	proberV4  = netip.MustParsePrefix("10.201.1.1/24")
	routerV4a = netip.MustParsePrefix("10.201.1.2/24")
	routerV4b = netip.MustParsePrefix("10.201.2.1/24")
	targetV4  = netip.MustParsePrefix("10.201.2.2/24")
	proberV6  = netip.MustParsePrefix("fd00:201:1::1/64")
	routerV6a = netip.MustParsePrefix("fd00:201:1::2/64")
	routerV6b = netip.MustParsePrefix("fd00:201:2::1/64")
	targetV6  = netip.MustParsePrefix("fd00:201:2::2/64")
)

// NewPath builds the path in a new lab (see New for when it skips or fails).
func NewPath(t testing.TB, c PathConfig, tools ...string) *Path {
	t.Helper()
	// The router forwards and sends its ICMP errors without rate limiting,
	// so tests see every one.
	if c.TargetMTU == 0 {
		c.TargetMTU = c.SecondMTU
	}
	l := New(t, tools...)
	p := &Path{
		Lab:    l,
		Prober: l.Namespace("prober"), Router: l.Namespace("router"), Target: l.Namespace("target"),
		TargetV4: targetV4.Addr(), TargetV6: targetV6.Addr(),
		RouterV4: routerV4a.Addr(), RouterV6: routerV6a.Addr(),
	}
	l.Link(p.Prober, "eth0", c.FirstMTU, p.Router, "eth0", c.FirstMTU)
	l.Link(p.Router, "eth1", c.SecondMTU, p.Target, "eth0", c.TargetMTU)
	for _, a := range []struct {
		ns     *Namespace
		ifname string
		addrs  []netip.Prefix
	}{
		{p.Prober, "eth0", []netip.Prefix{proberV4, proberV6}},
		{p.Router, "eth0", []netip.Prefix{routerV4a, routerV6a}},
		{p.Router, "eth1", []netip.Prefix{routerV4b, routerV6b}},
		{p.Target, "eth0", []netip.Prefix{targetV4, targetV6}},
	} {
		for _, pfx := range a.addrs {
			a.ns.Addr(a.ifname, pfx.String())
		}
	}
	p.Prober.Route("default", "via", routerV4a.Addr().String())
	p.Prober.Route("default", "via", routerV6a.Addr().String())
	p.Target.Route("default", "via", routerV4b.Addr().String())
	p.Target.Route("default", "via", routerV6b.Addr().String())
	p.Router.Forwarding()
	p.Router.Sysctl("net.ipv4.icmp_ratelimit", "0")
	p.Router.Sysctl("net.ipv6.icmp.ratelimit", "0")
	return p
}
