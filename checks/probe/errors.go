package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// probeError is a failure whose error.type the prober already knows (an
// assertion that failed, not a transport error), so classification keeps it.
type probeError struct {
	typ string
	err error
}

func (e *probeError) Error() string { return e.err.Error() }
func (e *probeError) Unwrap() error { return e.err }

// failf returns an error of the given error.type; the message must not carry
// secrets (header values, bodies, URL passwords).
func failf(typ, format string, args ...any) error {
	return &probeError{typ: typ, err: fmt.Errorf(format, args...)}
}

// errTooManyRedirects is returned by the http prober's redirect policy.
var errTooManyRedirects = errors.New("too many redirects")

// classifyError maps an error from dialling, TLS, HTTP, DNS or gRPC to one of
// the Err* constants; nil maps to "". The order matters: a TLS handshake cut
// short by the deadline is a timeout, not a tls error.
func classifyError(err error) string {
	if err == nil {
		return ""
	}
	var pe *probeError
	if errors.As(err, &pe) {
		return pe.typ
	}
	var expired *expiredError
	if errors.As(err, &expired) {
		return ErrCertExpiring
	}
	if errors.Is(err, errTooManyRedirects) {
		return ErrRedirects
	}
	if isTimeout(err) {
		return ErrTimeout
	}
	var (
		dnsErr  *net.DNSError
		addrErr *net.AddrError
	)
	if errors.As(err, &dnsErr) || errors.As(err, &addrErr) {
		// An AddrError is a host with no address the dial may use (none in
		// ip_protocol's family, or in source_address's).
		return ErrDNS
	}
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrConnectionRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		// The peer went away mid-exchange; EOF is how Go reports a peer that
		// closed the connection before (or while) answering.
		return ErrConnectionReset
	case isTLSError(err):
		return ErrTLS
	}
	if code, ok := grpcCode(err); ok {
		return classifyGRPCCode(code)
	}
	return ErrOther
}

// isTimeout reports whether err is a deadline expiring, in any of the ways
// the standard library and gRPC report one.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	code, ok := grpcCode(err)
	return ok && code == codes.DeadlineExceeded
}

// grpcCode returns the code of a gRPC status error anywhere in err's chain.
// status.FromError is not used: for other errors it formats a message,
// which is wasted work (and panics on some malformed x509 errors).
func grpcCode(err error) (codes.Code, bool) {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return codes.OK, false
	}
	return se.GRPCStatus().Code(), true
}

// isTLSError reports whether err comes from certificate verification or the
// TLS handshake.
func isTLSError(err error) bool {
	var (
		verr     *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		alert    tls.AlertError
		record   tls.RecordHeaderError
		echErr   *tls.ECHRejectionError
	)
	switch {
	case errors.As(err, &verr), errors.As(err, &unknown), errors.As(err, &hostname),
		errors.As(err, &invalid), errors.As(err, &alert), errors.As(err, &record),
		errors.As(err, &echErr):
		return true
	}
	// Alerts from the peer ("remote error: tls: bad certificate"), most
	// handshake failures and net/http's plain-HTTP answer to a TLS hello are
	// unexported or plain errors whose text is all that identifies them.
	msg := err.Error()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "server gave HTTP response to HTTPS client")
}

// classifyGRPCCode maps a gRPC status code of a failed health RPC.
func classifyGRPCCode(c codes.Code) string {
	switch c {
	case codes.DeadlineExceeded:
		return ErrTimeout
	case codes.NotFound:
		// The health server does not know the service: it is not serving it.
		return ErrGRPCNotServing
	default:
		return ErrOther
	}
}

// classify is classifyError for a run whose context may have expired: once
// the deadline has passed, whatever error the cut-off operation returned
// (closed connection, canceled request) is a timeout.
func classify(ctx context.Context, err error) string {
	var pe *probeError
	if errors.As(err, &pe) {
		return pe.typ
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return classifyError(err)
}
