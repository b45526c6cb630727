package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestClassifyError(t *testing.T) {
	opErr := func(op string, err error) error {
		return &net.OpError{Op: op, Net: "tcp", Err: &os.SyscallError{Syscall: op, Err: err}}
	}
	urlErr := func(err error) error { return &url.Error{Op: "Get", URL: "http://h/", Err: err} }
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, ""},
		{"context deadline", context.DeadlineExceeded, ErrTimeout},
		{"wrapped context deadline", urlErr(fmt.Errorf("reading: %w", context.DeadlineExceeded)), ErrTimeout},
		{"conn deadline", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, ErrTimeout},
		{"dns not found", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, ErrDNS},
		{"dns in url error", urlErr(&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x"}}), ErrDNS},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", IsTimeout: true}, ErrTimeout},
		{"refused", opErr("connect", syscall.ECONNREFUSED), ErrConnectionRefused},
		{"refused in url error", urlErr(opErr("connect", syscall.ECONNREFUSED)), ErrConnectionRefused},
		{"reset", opErr("read", syscall.ECONNRESET), ErrConnectionReset},
		{"broken pipe", opErr("write", syscall.EPIPE), ErrConnectionReset},
		{"eof before answer", urlErr(io.EOF), ErrConnectionReset},
		{"unexpected eof mid-body", fmt.Errorf("reading body: %w", io.ErrUnexpectedEOF), ErrConnectionReset},
		{"unknown authority", urlErr(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), ErrTLS},
		{"expired", &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired}}, ErrTLS},
		{"bare hostname error", x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"other"}}, Host: "h"}, ErrTLS},
		{"record header", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, ErrTLS},
		{"alert", tls.AlertError(40), ErrTLS},
		{"remote alert", &net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")}, ErrTLS},
		{"plain http answer", urlErr(errors.New("http: server gave HTTP response to HTTPS client")), ErrTLS},
		{"redirects", urlErr(fmt.Errorf("%w: more than 10", errTooManyRedirects)), ErrRedirects},
		{"probe error", failf(ErrBodyMismatch, "body does not match %q", "x"), ErrBodyMismatch},
		{"probe error wins over cause", failf(ErrExpectMismatch, "no match: %w", os.ErrDeadlineExceeded), ErrExpectMismatch},
		{"wrapped probe error", fmt.Errorf("ctx: %w", failf(ErrCertExpiring, "soon")), ErrCertExpiring},
		{"grpc deadline", status.Error(codes.DeadlineExceeded, "deadline"), ErrTimeout},
		{"grpc not found", status.Error(codes.NotFound, "unknown service"), ErrGRPCNotServing},
		{"grpc unavailable", status.Error(codes.Unavailable, "connection error"), ErrOther},
		{"grpc unimplemented", status.Error(codes.Unimplemented, "no health"), ErrOther},
		{"canceled", context.Canceled, ErrOther},
		{"unknown", errors.New("weird"), ErrOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := classifyError(tc.err); got != tc.want {
				t.Errorf("classifyError(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func TestClassifyAfterDeadline(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	live := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want string
	}{
		{"closed conn after deadline", expired, net.ErrClosed, ErrTimeout},
		{"canceled request after deadline", expired, context.Canceled, ErrTimeout},
		{"assertion after deadline", expired, failf(ErrExpectMismatch, "no match"), ErrExpectMismatch},
		{"closed conn, live context", live, net.ErrClosed, ErrConnectionReset},
		{"refused, live context", live, syscall.ECONNREFUSED, ErrConnectionRefused},
	}
	for _, tc := range tests {
		if got := classify(tc.ctx, tc.err); got != tc.want {
			t.Errorf("%s: classify = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		typ     string
		running string
		want    string
	}{
		{"url error unwrapped", &url.Error{Op: "Get", URL: "http://u:pw@h/?token=abc", Err: errors.New("boom")}, ErrOther, "", "boom"},
		{"timeout names phase", context.DeadlineExceeded, ErrTimeout, PhaseProcessing, "timed out after 200ms during processing"},
		{"timeout without phase", context.DeadlineExceeded, ErrTimeout, "", "timed out after 200ms"},
		{"plain", failf(ErrStatusCode, "status code 500, want 2xx"), ErrStatusCode, "", "status code 500, want 2xx"},
	}
	for _, tc := range tests {
		got := reason(tc.err, tc.typ, 200*time.Millisecond+300*time.Microsecond, tc.running)
		if got != tc.want {
			t.Errorf("%s: reason = %q, want %q", tc.name, got, tc.want)
		}
		if strings.Contains(got, "pw") || strings.Contains(got, "token") {
			t.Errorf("%s: reason %q leaks the URL", tc.name, got)
		}
	}
}
