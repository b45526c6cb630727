// Package probe holds the probers: one file per protocol behind one
// function type, registered by check type in registry.go, plus the phase
// timing, connection helpers and error classification they share.
package probe

import (
	"context"
	"net"
	"net/netip"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// Target is the concrete endpoint one run probes.
type Target struct {
	Check *config.Check
	// Address, when valid, is dialled instead of the check's host; Host header and SNI keep the name.
	Address netip.AddrPort
	// Propagator injects the run's trace context into outgoing requests; nil sends none.
	Propagator propagation.TextMapPropagator
	// Resolver looks up the check's host; nil is the system resolver.
	Resolver *net.Resolver
	// MeshFrom, set on mesh probes, is the sender's identity: http requests
	// then carry the check's name and it in the mesh headers, so the peer
	// counts the probes it receives.
	MeshFrom string
}

// ProbeFunc runs one probe of t and reports what it measured, within ctx's deadline.
type ProbeFunc func(ctx context.Context, t Target) Result

// Phase names, as they appear in the probe.phase.duration metric's phase attribute.
const (
	PhaseDNS        = "dns"
	PhaseConnect    = "connect"
	PhaseTLS        = "tls"
	PhaseRequest    = "request"    // writing the request
	PhaseProcessing = "processing" // request written until the first response byte
	PhaseTransfer   = "transfer"   // first byte until body read
)

// Error types: the fixed set of error.type values a failed run reports.
const (
	ErrTimeout           = "timeout"
	ErrDNS               = "dns"
	ErrConnectionRefused = "connection_refused"
	ErrConnectionReset   = "connection_reset"
	ErrTLS               = "tls"
	ErrCertExpiring      = "cert_expiring"
	ErrStatusCode        = "status_code"
	ErrBodyMismatch      = "body_mismatch"
	ErrHeaderMismatch    = "header_mismatch"
	ErrRedirects         = "too_many_redirects"
	ErrHTTPVersion       = "http_version" // http: version 2 asked for, HTTP/1.1 answered
	ErrExpectMismatch    = "expect_mismatch"
	ErrDNSAnswer         = "dns_answer_mismatch"
	ErrGRPCNotServing    = "grpc_not_serving"
	ErrNoReply           = "no_reply"               // icmp, mtu: not one echo answered (total loss)
	ErrPacketLoss        = "packet_loss"            // icmp: loss above max_loss
	ErrUnreachable       = "unreachable"            // icmp, mtu: ICMP destination unreachable, no route
	ErrTTLExceeded       = "ttl_exceeded"           // icmp, mtu: ICMP time exceeded (ttl too small, a loop)
	ErrPermission        = "permission"             // icmp, mtu: no ICMP socket allowed (sysctl or capability)
	ErrPacketTooBig      = "packet_too_big"         // icmp: a DF echo larger than the path or the interface
	ErrBlackHole         = "black_hole"             // mtu: large packets vanish without "fragmentation needed"
	ErrMTUBelowMin       = "mtu_below_min"          // mtu: path MTU below min_mtu
	ErrGRPCUnimplemented = "grpc_unimplemented"     // grpc: the server has no grpc.health.v1.Health service
	ErrGRPCProtocol      = "grpc_protocol_mismatch" // grpc: the port speaks HTTP/1.1, or TLS without grpc.tls
	ErrTransferTimeout   = "transfer_timeout"       // throughput: the deadline passed mid-transfer
	ErrThroughputLow     = "throughput_too_low"     // throughput: below min_bits_per_second
	ErrOther             = "other"
)

// PhaseTiming is one measured phase of a run.
type PhaseTiming struct {
	Name       string
	Start, End time.Time
}

// Result is what one run measured.
type Result struct {
	Success bool
	// ErrorType is one of the Err* constants when Success is false.
	ErrorType string
	// Reason says why the run failed, free of secrets (no headers, bodies or URL passwords).
	Reason string
	// Message is the GoHeartbeat-style line, such as "Connection to 10.0.0.1:22 successful.".
	Message  string
	Start    time.Time
	Duration time.Duration
	Phases   []PhaseTiming
	// Peer is the address actually dialled; zero when no connection was made.
	Peer       netip.AddrPort
	StatusCode int // http only; 0 otherwise
	// ServerTiming is the app duration the server reported in Server-Timing; ok false when absent.
	ServerTiming    time.Duration
	HasServerTiming bool
	// CertExpiry is the earliest NotAfter of the verified chain's leaf; zero when no TLS.
	CertExpiry time.Time
	// ProtocolVersion is the HTTP version of the final response ("1.1", "2"); http only.
	ProtocolVersion string
	// BodyBytes counts the bytes of the final response's body that were read; http only.
	BodyBytes int64
	// Transfers are a throughput run's directions, also when it failed part way.
	Transfers []Transfer
	// Echo is what an icmp run's burst measured; nil for other types.
	Echo *EchoStats
	// PathMTU is what an mtu run found; nil for other types.
	PathMTU *PathMTUStats
	// Figures are the other values this run measured, in reading order; /status shows them.
	Figures []Figure
}

// EchoStats is one icmp burst: packets, replies and round-trip times.
type EchoStats struct {
	Socket     string // "datagram" (unprivileged) or "raw"
	Sent       int
	Received   int // distinct replies; duplicates are not added
	Duplicates int
	RTTs       []time.Duration
	Min, Avg   time.Duration
	Max        time.Duration
	StdDev     time.Duration
}

// Loss is the fraction of packets sent without a reply.
func (e *EchoStats) Loss() float64 {
	if e.Sent == 0 {
		return 0
	}
	return 1 - float64(e.Received)/float64(e.Sent)
}

// PathMTUStats is one mtu run's search.
type PathMTUStats struct {
	Mode string // "icmp" or "http"
	// MTU is the largest IP packet that crossed, in bytes (icmp mode); 0
	// when unknown.
	MTU int
	// Largest is the largest response body that arrived whole (http mode).
	Largest int
	// Limit says what bounded the search: "frag_needed", "local_limit",
	// "lost" (a black hole), "stalled" (http mode) or "" (max_mtu reached).
	Limit string
	// NextHop is the MTU a "fragmentation needed" or the local interface reported.
	NextHop int
	// CutShort is true when the deadline stopped the search before it converged.
	CutShort bool
	// Tried lists each size probed and its outcome ("1400 passed", "1420 frag_needed 1400").
	Tried []string
}
