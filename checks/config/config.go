// Package config holds the checks file's types, its two formats (the legacy
// GoHeartbeat JSON-with-comments file and the YAML format), defaults and
// validation.
package config

import (
	"net/netip"
	"net/url"
	"regexp"
	"time"
)

// File is a loaded, defaulted and validated checks file.
type File struct {
	// Path is the file the checks were read from ("" when built in code).
	Path   string
	Checks []Check

	// digest is the SHA-256 of the bytes parsed, so a reload of unchanged
	// content can be skipped; zero for a File built in code.
	digest [32]byte
}

// Check is one probe target with its defaults and derived values filled in by ApplyDefaults.
type Check struct {
	// Probers never look anything up elsewhere.

	Name   string
	Type   string // one of the Type* constants
	Target string // URL for http; host:port for tcp, tls, grpc; name for dns
	// Server is what a run dials and reports as server.address/port (for dns the resolver, zero for the system's).
	Server HostPort
	// URL is the parsed target of an http check; nil for other types.
	URL      *url.URL
	Interval time.Duration
	Timeout  time.Duration
	// Jitter is the fraction of Interval by which each run may move (0.1 = ±10 %).
	Jitter           float64
	FailureThreshold int
	SuccessThreshold int
	// EachAddress probes every address the target's host resolves to, up to MaxAddresses.
	EachAddress  bool
	MaxAddresses int

	HTTP HTTPOptions
	TCP  TCPOptions
	TLS  TLSOptions // used by tls checks, https targets and tcp checks with TCP.TLS
	DNS  DNSOptions
	GRPC GRPCOptions

	// Dial says how a run's connections are made: address family, source address.
	Dial DialOptions
	ICMP ICMPOptions
	MTU  MTUOptions
	// Throughput configures a throughput check; its URL is derived from Target.
	Throughput ThroughputOptions
}

// HTTPOptions configures an http check.
type HTTPOptions struct {
	Method  string            // always set; default GET
	Headers map[string]string // values may be secrets: never log them
	Body    string
	// ValidStatusCodes lists accepted codes; empty means any 2xx.
	ValidStatusCodes  []int
	BodyMatches       []*regexp.Regexp
	BodyNotMatches    []*regexp.Regexp
	HeaderMatches     []HeaderMatch
	NoFollowRedirects bool
	MaxRedirects      int // always set: 0 exactly when NoFollowRedirects, default 10
	// BasicAuth, when set, is sent as an Authorization: Basic header.
	BasicAuth *BasicAuth

	// Version is the HTTP version to speak: HTTPVersionAuto, HTTPVersion1 or HTTPVersion2.
	Version string
	// MaxBodyBytes is how much of the body the body regexps see; set exactly when there are some.
	MaxBodyBytes int64
	// HeaderNotMatches fail the run when a header has a value matching the regexp.
	HeaderNotMatches []HeaderMatch
	FailIfSSL        bool // fail when the final response came over TLS
	FailIfNotSSL     bool // fail when it did not
	// ProxyURL, when set, is the HTTP, HTTPS or SOCKS5 proxy requests go through.
	ProxyURL *ProxyURL
}

// HTTP versions an http check can be told to speak.
const (
	HTTPVersionAuto = ""    // HTTP/2 or HTTP/1.1 as ALPN negotiates over TLS; HTTP/1.1 in cleartext
	HTTPVersion1    = "1.1" // HTTP/1.1 only
	HTTPVersion2    = "2"   // HTTP/2 only: h2 over TLS, h2c with prior knowledge in cleartext
)

// BasicAuth holds resolved HTTP basic-auth credentials; printing or logging it hides the password.
type BasicAuth struct {
	// Already resolved from ${env:...}, ${file:...} or password_file.

	Username string
	Password string // a secret: never log it
}

// HeaderMatch requires a response header to match a regular expression.
type HeaderMatch struct {
	Header string
	Regexp *regexp.Regexp
}

// TCPOptions configures a tcp check.
type TCPOptions struct {
	Send   string
	Expect *regexp.Regexp // nil: connecting is enough; matched against each line read
	UseTLS bool
	// QueryResponse is a dialogue run in order instead of Send and Expect.
	QueryResponse []QueryStep
}

// QueryStep is one step of a tcp dialogue: wait for Expect, then write Send, then start TLS; each part optional.
type QueryStep struct {
	// The order within a step is blackbox_exporter's.

	Expect *regexp.Regexp // matched against each line read, as Expect
	Send   string         // a secret like TCPOptions.Send; ends in "\n" (added when missing)
	// StartTLS upgrades the connection to TLS (STARTTLS), verified by the tls options.
	StartTLS bool
}

// TLSOptions configures certificate checks for https, tls and tcp+tls.
type TLSOptions struct {
	InsecureSkipVerify bool
	CAFile             string
	ServerName         string
	// MinDaysLeft fails the check when the leaf certificate expires sooner (0: off).
	MinDaysLeft int

	// CertFile and KeyFile are the PEM client certificate and key presented when the server asks (mTLS).
	CertFile, KeyFile string
	// MinVersion is the lowest TLS version offered (a crypto/tls VersionTLS* value); 0 means Go's default, TLS 1.2.
	MinVersion uint16
	// AllowExpired lets an expired leaf pass when InsecureSkipVerify is set (it fails otherwise).
	AllowExpired bool
}

// DialOptions configures the connections of every type that dials.
type DialOptions struct {
	// IPProtocol is the address family to use: "" (both, in the resolver's order), "ip4" or "ip6".
	IPProtocol string
	// NoIPProtocolFallback keeps to IPProtocol's family even when the host has no address in it.
	NoIPProtocolFallback bool
	// SourceAddress, when valid, is the local address connections are made from.
	SourceAddress netip.Addr
}

// DNSOptions configures a dns check.
type DNSOptions struct {
	Server     string // host:port of the resolver to ask (port 53 added when missing); "" means the system resolver
	RecordType string // A, AAAA, CNAME, MX, TXT, NS, SRV; always set, default A
	// Transport is "udp" (retried over TCP when truncated) or "tcp"; always set, default udp.
	Transport string
	// ValidRcodes are the response codes that pass, as numbers (0 NOERROR, 3 NXDOMAIN); always set, default NOERROR.
	ValidRcodes []int
	// FailIfNoAnswer fails a run whose answer section is empty; by default NOERROR without records passes.
	FailIfNoAnswer bool
	// ExpectedAnswers, if set, must all appear in the answer, compared as the dns prober documents.
	ExpectedAnswers []string
}

// GRPCOptions configures a grpc health check.
type GRPCOptions struct {
	Service string // grpc.health.v1 service name; "" is the server's overall health
	UseTLS  bool
}
