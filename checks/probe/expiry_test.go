package probe

import (
	"io"
	"net"
	"testing"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// TestExpiredLeafFailsWithoutVerification requires an expired certificate
// to fail a check that skips verification, whatever min_days_left says.
func TestExpiredLeafFailsWithoutVerification(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	expiredTLS := tcpServer(t, &pki.expired, func(c net.Conn) { io.Copy(io.Discard, c) })
	expiredHTTPS := newTestServer(t, &pki.expired)
	skip := config.TLSOptions{InsecureSkipVerify: true}
	checks := []config.Check{
		{Name: "tls", Type: config.TypeTLS, Target: expiredTLS, TLS: skip},
		{Name: "tcp+tls", Type: config.TypeTCP, Target: expiredTLS, TLS: skip, TCP: config.TCPOptions{UseTLS: true}},
		{Name: "https", Type: config.TypeHTTP, Target: expiredHTTPS.URL + "/ok", TLS: skip},
	}
	runTable(t, checks, func(c config.Check) tableCase {
		return tableCase{name: c.Name, check: c, wantType: ErrCertExpiring}
	}, func(t *testing.T, _ config.Check, _ *config.Check, res Result) {
		if res.CertExpiry.IsZero() {
			t.Error("the expired certificate's expiry is not reported")
		}
	})
}
