package config

import (
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// Check types.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeTLS  = "tls"
	TypeDNS  = "dns"
	TypeGRPC = "grpc"
	TypeICMP = "icmp"
	TypeMTU  = "mtu"
	// TypeThroughput measures download and upload rates against a payload server.
	TypeThroughput = "throughput"
)

// DefaultDNSPort is the port of a dns.server written without one.
const DefaultDNSPort = 53

// checkType is everything this package knows about one check type. Adding
// a type means its constant, its options struct (a field of Check) and its
// YAML block (a field of checkYAML), and one entry in checkTypes.
type checkType struct {
	name string
	// section is the options block only this type uses ("" for none), and
	// options points at its struct, so a block set on another type is
	// reported and the type's own block validated (by its problems method).
	section string
	options func(*Check) optionsBlock
	// usesTLS reports whether the tls block can take effect.
	usesTLS func(*Check) bool
	// eachAddress is false for types whose target cannot be resolved to
	// addresses (a dns check asks about its target, it does not dial it).
	eachAddress bool
	// targetProblem says what is wrong with a target (already known to be
	// printable, without spaces, and not too long), or "".
	targetProblem func(target string) string
	// decodeYAML reads the type's own block of a checks file into c.
	decodeYAML func(d *yamlDecoder, r *checkYAML, path string, c *Check)
	// derive sets Check.Server (and URL where the type has one); called
	// only for a valid target.
	derive func(*Check)
	// checkProblems, if set, validates what the type's options require of
	// the rest of the check (a timeout long enough, a target of the right
	// form); fields relative to the check.
	checkProblems func(*Check) []problem
	// exclusive types run one at a time in a sidecar, whatever the
	// concurrency limit: two throughput runs would share, and halve, a link.
	exclusive bool
}

// optionsBlock is a type's options struct.
type optionsBlock interface {
	// problems validates the block; fields relative to it.
	problems() []problem
}

// checkTypes lists the types in the order error messages name them.
var checkTypes = []checkType{
	{
		name: TypeHTTP, section: "http", options: func(c *Check) optionsBlock { return &c.HTTP },
		usesTLS: always, eachAddress: true,
		targetProblem: urlProblem, derive: deriveURL,
		decodeYAML: func(d *yamlDecoder, r *checkYAML, p string, c *Check) { c.HTTP = d.httpOptions(&r.HTTP, p) },
	},
	{
		name: TypeTCP, section: "tcp", options: func(c *Check) optionsBlock { return &c.TCP },
		usesTLS: func(c *Check) bool { return c.TCP.UseTLS || c.TCP.startsTLS() }, eachAddress: true,
		targetProblem: hostPortProblem, derive: deriveTarget,
		decodeYAML: func(d *yamlDecoder, r *checkYAML, p string, c *Check) { c.TCP = d.tcpOptions(&r.TCP, p) },
	},
	{
		name: TypeTLS, usesTLS: always, eachAddress: true,
		targetProblem: hostPortProblem, derive: deriveTarget,
	},
	{
		name: TypeDNS, section: "dns", options: func(c *Check) optionsBlock { return &c.DNS },
		usesTLS: never, eachAddress: false,
		targetProblem: dnsNameProblem, derive: deriveDNSServer,
		decodeYAML: func(d *yamlDecoder, r *checkYAML, p string, c *Check) { c.DNS = d.dnsOptions(&r.DNS, p) },
	},
	{
		name: TypeGRPC, section: "grpc", options: func(c *Check) optionsBlock { return &c.GRPC },
		usesTLS: func(c *Check) bool { return c.GRPC.UseTLS }, eachAddress: true,
		targetProblem: hostPortProblem, derive: deriveTarget,
		decodeYAML: func(d *yamlDecoder, r *checkYAML, p string, c *Check) { c.GRPC = d.grpcOptions(&r.GRPC, p) },
	},
	{
		name: TypeICMP, section: "icmp", options: func(c *Check) optionsBlock { return &c.ICMP },
		usesTLS: never, eachAddress: true,
		targetProblem: hostProblem, derive: deriveHost,
		decodeYAML:    func(d *yamlDecoder, r *checkYAML, p string, c *Check) { c.ICMP = d.icmpOptions(&r.ICMP, p) },
		checkProblems: icmpCheckProblems,
	},
	{
		name: TypeMTU, section: "mtu", options: func(c *Check) optionsBlock { return &c.MTU },
		// Only an http-mode search of an https:// payload server does TLS.
		usesTLS: func(c *Check) bool { return strings.HasPrefix(c.Target, "https://") }, eachAddress: true,
		targetProblem: mtuTargetProblem, derive: deriveMTU,
		decodeYAML:    func(d *yamlDecoder, r *checkYAML, p string, c *Check) { c.MTU = d.mtuOptions(&r.MTU, p) },
		checkProblems: mtuCheckProblems,
	},
	{
		name: TypeThroughput, section: "throughput", options: func(c *Check) optionsBlock { return &c.Throughput },
		usesTLS: func(c *Check) bool { return strings.HasPrefix(strings.ToLower(c.Target), "https:") }, eachAddress: true,
		targetProblem: urlProblem, derive: deriveThroughput, exclusive: true,
		decodeYAML: func(d *yamlDecoder, r *checkYAML, p string, c *Check) {
			c.Throughput = d.throughputOptions(&r.Throughput, p)
		},
	},
}

func always(*Check) bool { return true }
func never(*Check) bool  { return false }

// Types lists the check types, in the order error messages name them.
func Types() []string {
	names := make([]string, len(checkTypes))
	for i, t := range checkTypes {
		names[i] = t.name
	}
	return names
}

// lookupType returns the entry of type name; ok is false for an unknown type.
func lookupType(name string) (checkType, bool) {
	for _, t := range checkTypes {
		if t.name == name {
			return t, true
		}
	}
	return checkType{}, false
}

// sectionType returns the type whose own options block is section.
func sectionType(section string) (checkType, bool) {
	for _, t := range checkTypes {
		if t.section == section {
			return t, true
		}
	}
	return checkType{}, false
}

// UsesTLS reports whether c's TLS options can take effect.
func (c *Check) UsesTLS() bool {
	// http checks always qualify: an http:// target may redirect to https.
	t, ok := lookupType(c.Type)
	return ok && t.usesTLS(c)
}

// Exclusive reports whether c's runs must never overlap another exclusive run.
func (c *Check) Exclusive() bool {
	t, ok := lookupType(c.Type)
	return ok && t.exclusive
}

// HostPort is a host (a DNS name, or an IP literal without brackets) and a port.
type HostPort struct {
	Host string
	Port int
}

// String gives the host:port form net.Dial takes ("[::1]:53"); "" for the zero value.
func (h HostPort) String() string {
	if h == (HostPort{}) {
		return ""
	}
	return net.JoinHostPort(h.Host, strconv.Itoa(h.Port))
}

// IsZero reports whether h is unset (a dns check using the system resolver).
func (h HostPort) IsZero() bool { return h == HostPort{} }

// AddrPort returns h as a netip.AddrPort when its host is an IP literal.
func (h HostPort) AddrPort() (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(h.Host)
	if err != nil || h.Port < 0 || h.Port > 65535 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a, uint16(h.Port)), true
}

// splitHostPort parses "host:port"; ok is false unless the port is a number.
func splitHostPort(s string) (HostPort, bool) {
	host, port, err := net.SplitHostPort(s)
	if err != nil || !validPort(port) {
		return HostPort{}, false
	}
	n, _ := strconv.Atoi(port)
	return HostPort{Host: host, Port: n}, true
}

// deriveTarget is for types whose target is the host:port they dial.
func deriveTarget(c *Check) {
	c.Server, _ = splitHostPort(c.Target)
}

// deriveURL parses the URL once; Server is the host and port net/http
// dials for it.
func deriveURL(c *Check) {
	u, err := url.Parse(c.Target)
	if err != nil {
		return
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p := u.Port(); p != "" {
		port, _ = strconv.Atoi(p)
	}
	c.URL, c.Server = u, HostPort{Host: u.Hostname(), Port: port}
}

// deriveDNSServer: the server a dns check talks to is the resolver, not
// the name it asks about; the zero value means the system resolver.
func deriveDNSServer(c *Check) {
	c.Server, _ = splitHostPort(c.DNS.Server)
}

// withDNSPort adds the default port to a resolver written without one
// ("10.0.0.53", "::1", "ns.example.com").
func withDNSPort(server string) string {
	if server == "" {
		return ""
	}
	if net.ParseIP(server) != nil || !strings.Contains(server, ":") && validHostname(server) {
		return net.JoinHostPort(server, strconv.Itoa(DefaultDNSPort))
	}
	return server
}

// derive fills the values computed from the target and options: URL and
// Server. A target that does not fit its type leaves them zero; validation
// reports it.
func (c *Check) derive() {
	c.URL, c.Server = nil, HostPort{}
	t, ok := lookupType(c.Type)
	if !ok || c.Target == "" || targetProblem(t, c.Target) != "" {
		return
	}
	t.derive(c)
}
