package probe

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// clientPKI issues client certificates from the test CA, which servers
// requiring them trust.
type clientPKI struct {
	ca    *x509.Certificate
	caKey any
	pool  *x509.CertPool
}

func newClientPKI(pki *testPKI) *clientPKI {
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	return &clientPKI{ca: pki.ca, caKey: pki.caKey, pool: pool}
}

// write writes a client certificate for cn and its key as PEM files.
func (p *clientPKI) write(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// tlsServer serves the verified client certificate's common name (or
// "anonymous") over TLS configured by cfg, with the server certificate cert.
func tlsServer(t *testing.T, cert tls.Certificate, cfg *tls.Config) string {
	t.Helper()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "anonymous"
		if len(r.TLS.PeerCertificates) > 0 {
			name = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		io.WriteString(w, name)
	})
	return startTestServer(t, handler, &cert, func(srv *httptest.Server) { srv.TLS = cfg }).URL
}

// TestTLSClientOptions covers client certificates (mTLS), min_version and
// allow_expired against real TLS servers.
func TestTLSClientOptions(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	clients := newClientPKI(pki)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	clients.write(t, certFile, keyFile, "client-a")
	mtls := tlsServer(t, pki.valid, &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clients.pool})
	tls12 := tlsServer(t, pki.valid, &tls.Config{MaxVersion: tls.VersionTLS12})
	expired := tlsServer(t, pki.expired, &tls.Config{})
	withCert := config.TLSOptions{CAFile: pki.caFile, CertFile: certFile, KeyFile: keyFile}
	type row = struct {
		name, url string
		tls       config.TLSOptions
		body      string // the body must match
		wantType  string
	}
	rows := []row{
		{name: "client certificate presented", url: mtls, tls: withCert, body: "^client-a$"},
		{name: "no client certificate", url: mtls, tls: config.TLSOptions{CAFile: pki.caFile}, wantType: ErrTLS},
		{name: "client certificate unasked", url: tls12, tls: withCert, body: "^anonymous$"},
		{name: "min_version 1.3 against TLS 1.2", url: tls12, tls: config.TLSOptions{CAFile: pki.caFile, MinVersion: tls.VersionTLS13}, wantType: ErrTLS},
		{name: "min_version 1.2 against TLS 1.2", url: tls12, tls: config.TLSOptions{CAFile: pki.caFile, MinVersion: tls.VersionTLS12}},
		{name: "expired, verify off, allowed", url: expired, tls: config.TLSOptions{InsecureSkipVerify: true, AllowExpired: true}},
		{name: "expired, verify off", url: expired, tls: config.TLSOptions{InsecureSkipVerify: true}, wantType: ErrCertExpiring},
	}
	runTable(t, rows, func(r row) tableCase {
		var opts config.HTTPOptions
		if r.body != "" {
			opts.BodyMatches = []*regexp.Regexp{regexp.MustCompile(r.body)}
		}
		return tableCase{name: r.name, wantType: r.wantType, check: config.Check{Type: config.TypeHTTP, Target: r.url, TLS: r.tls, HTTP: opts}}
	}, func(t *testing.T, r row, _ *config.Check, res Result) {
		if r.tls.AllowExpired && !res.CertExpiry.Before(time.Now()) {
			t.Errorf("cert expiry %v: want the expired leaf's", res.CertExpiry)
		}
	})

	// A rotated pair is used by the next run, without a reload.
	clients.write(t, certFile, keyFile, "client-b")
	check := newCheck(config.Check{Type: config.TypeHTTP, Target: mtls, Timeout: 3 * time.Second, TLS: withCert,
		HTTP: config.HTTPOptions{BodyMatches: []*regexp.Regexp{regexp.MustCompile("^client-b$")}}})
	assertResult(t, runProbe(t, nil, Target{Check: check}), "", check.Timeout)
	// A pair that became unreadable fails the run, naming no key material.
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runProbe(t, nil, Target{Check: check})
	assertResult(t, res, ErrOther, check.Timeout)
	if want := "loading client certificate: tls: failed to find any PEM data in key input"; res.Reason != want {
		t.Errorf("reason %q, want %q", res.Reason, want)
	}
}
