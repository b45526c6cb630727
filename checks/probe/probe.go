// Package probe holds the probers: one file per protocol behind one
// function type, registered by check type in registry.go, plus the phase
// timing, connection helpers and error classification they share.
package probe

import (
	"context"
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
	ErrBodyTooLarge      = "body_too_large"
	ErrRedirects         = "too_many_redirects"
	ErrExpectMismatch    = "expect_mismatch"
	ErrDNSAnswer         = "dns_answer_mismatch"
	ErrGRPCNotServing    = "grpc_not_serving"
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
	// Figures are the other values this run measured, in reading order; /status shows them.
	Figures []Figure
}
