package config

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// dialYAML is the keys of a check that say how its connections are made.
type dialYAML struct {
	IPProtocol         ast.Node `yaml:"ip_protocol"`          // ip4 or ip6; default: both families
	IPProtocolFallback ast.Node `yaml:"ip_protocol_fallback"` // default true
	SourceAddress      ast.Node `yaml:"source_address"`       // an IP address of this host
}

var (
	ipProtocols = []string{"ip4", "ip6"}
	// ownSockets are the types whose connections do not go through the
	// shared dialer: a dns check's resolver client, icmp and mtu sockets.
	ownSockets = []string{TypeDNS, TypeICMP, TypeMTU}
)

func (d *yamlDecoder) dialOptions(r *dialYAML, path string) DialOptions {
	var o DialOptions
	if v, ok := d.str(r.IPProtocol, joinPath(path, "ip_protocol")); ok {
		o.IPProtocol = strings.ToLower(v)
	}
	if v, ok := d.boolean(r.IPProtocolFallback, joinPath(path, "ip_protocol_fallback")); ok {
		o.NoIPProtocolFallback = !v
	}
	field := joinPath(path, "source_address")
	if s, ok := d.str(r.SourceAddress, field); ok {
		// Parsed here, once: probers take the typed address.
		a, err := netip.ParseAddr(s)
		if err != nil {
			d.fail(field, ErrInvalidValue, "%q is not an IP address", s)
		} else {
			o.SourceAddress = a.Unmap()
		}
	}
	return o
}

// dialProblems checks the dial options and the ways of connecting that
// exclude each other; fields relative to the check.
func (c *Check) dialProblems() []problem {
	o := c.Dial
	var ps []problem
	add := func(field string, format string, args ...any) {
		ps = append(ps, probf(field, ErrInvalidValue, format, args...))
	}
	known := slices.Contains(ipProtocols, o.IPProtocol)
	if o.IPProtocol != "" && !known {
		add("ip_protocol", "unknown ip_protocol %q (want ip4 or ip6)", o.IPProtocol)
	}
	if o.NoIPProtocolFallback && o.IPProtocol == "" {
		add("ip_protocol_fallback", "only used with ip_protocol")
	}
	if a := o.SourceAddress; a.IsValid() && known && a.Is4() != (o.IPProtocol == "ip4") {
		// A source address fixes the family its connections can use.
		add("source_address", "%s is not an address of ip_protocol %s", a, o.IPProtocol)
	}
	if slices.Contains(ownSockets, c.Type) {
		if o.IPProtocol != "" {
			add("ip_protocol", "not supported by %s checks", c.Type)
		}
		if o.SourceAddress.IsValid() {
			add("source_address", "not supported by %s checks", c.Type)
		}
	}
	if c.Type == TypeHTTP && c.HTTP.ProxyURL != nil && c.EachAddress {
		add("each_address", "cannot be used with http.proxy_url: the proxy resolves the target")
	}
	return ps
}

// Select returns the addresses of addrs a check with these options may dial.
func (o DialOptions) Select(addrs []netip.Addr) []netip.Addr {
	// Those of source_address's family, then of ip_protocol's, or of the
	// other family when there are none and fallback is allowed.
	if a := o.SourceAddress; a.IsValid() {
		addrs = slices.DeleteFunc(slices.Clone(addrs), func(b netip.Addr) bool { return b.Is4() != a.Is4() })
	}
	if o.IPProtocol == "" {
		return addrs
	}
	want4 := o.IPProtocol == "ip4"
	preferred := slices.DeleteFunc(slices.Clone(addrs), func(b netip.Addr) bool { return b.Is4() != want4 })
	if len(preferred) == 0 && !o.NoIPProtocolFallback {
		return addrs
	}
	return preferred
}
