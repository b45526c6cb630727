package probe

import (
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

func TestTLSProbe(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	drain := func(c net.Conn) { io.Copy(io.Discard, c) }
	valid := tcpServer(t, &pki.valid, drain)
	selfSigned := tcpServer(t, &pki.selfSigned, drain)
	expired := tcpServer(t, &pki.expired, drain)
	expiring := tcpServer(t, &pki.expiring, drain)
	wrongHost := tcpServer(t, &pki.wrongHost, drain)
	plain := tcpServer(t, nil, banner)
	hanging, _ := testkit.BlackHole(t)
	closed := testkit.ClosedAddr(t)
	_, validPort, _ := net.SplitHostPort(valid)
	ca := config.TLSOptions{CAFile: pki.caFile}

	type row = struct {
		name     string
		target   string
		address  string
		tls      config.TLSOptions
		timeout  time.Duration
		wantType string
	}
	tests := []row{
		{name: "valid", target: valid, tls: ca},
		{name: "valid by name", target: "localhost:" + validPort, tls: ca},
		{name: "valid, min days ok", target: valid, tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 60}},
		{name: "valid, min days too many", target: valid, tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 100}, wantType: ErrCertExpiring},
		{name: "unknown authority", target: valid, wantType: ErrTLS},
		{name: "self-signed", target: selfSigned, tls: ca, wantType: ErrTLS},
		{name: "self-signed, verify off", target: selfSigned, tls: config.TLSOptions{InsecureSkipVerify: true}},
		{name: "expired", target: expired, tls: ca, wantType: ErrTLS},
		{name: "expired, verify off, min days", target: expired, tls: config.TLSOptions{InsecureSkipVerify: true, MinDaysLeft: 1}, wantType: ErrCertExpiring},
		{name: "expiring in 3 days, min 14", target: expiring, tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 14}, wantType: ErrCertExpiring},
		{name: "expiring in 3 days, no minimum", target: expiring, tls: ca},
		{name: "wrong hostname", target: wrongHost, tls: ca, wantType: ErrTLS},
		{name: "wrong hostname, server name set", target: wrongHost, tls: config.TLSOptions{CAFile: pki.caFile, ServerName: "other.example"}},
		{name: "plain server", target: plain, tls: ca, wantType: ErrTLS},
		{name: "handshake hangs", target: hanging, tls: ca, timeout: 200 * time.Millisecond, wantType: ErrTimeout},
		{name: "closed port", target: closed, tls: ca, wantType: ErrConnectionRefused},
		{name: "empty", target: "", wantType: ErrOther},
		{name: "address override keeps SNI", target: "heartbeat.test:" + validPort, address: valid, tls: ca},
		{name: "address override, name not in cert", target: "other.example:" + validPort, address: valid, tls: ca, wantType: ErrTLS},
	}
	runTable(t, tests, func(tc row) tableCase {
		return tableCase{name: tc.name, address: tc.address, wantType: tc.wantType,
			check: config.Check{Type: config.TypeTLS, Target: tc.target, Timeout: tc.timeout, TLS: tc.tls}}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		if tc.wantType == "" {
			if !slices.Contains(phaseNames(res), PhaseTLS) || !slices.Contains(phaseNames(res), PhaseConnect) {
				t.Errorf("phases %v lack connect or tls", phaseNames(res))
			}
			if !strings.HasSuffix(res.Message, "successful, certificate valid until "+res.CertExpiry.UTC().Format(time.DateOnly)+".") {
				t.Errorf("message %q", res.Message)
			}
		}
		if tc.wantType == ErrCertExpiring && res.CertExpiry.IsZero() {
			t.Error("expiring certificate's expiry not recorded")
		}
	})
	check := newCheck(config.Check{Type: config.TypeTLS, Target: valid, Timeout: 3 * time.Second, TLS: ca})
	if res := runProbe(t, nil, Target{Check: check}); !res.CertExpiry.Equal(pki.validNotAft) {
		t.Errorf("cert expiry %v, want the leaf's NotAfter %v", res.CertExpiry, pki.validNotAft)
	}
}
