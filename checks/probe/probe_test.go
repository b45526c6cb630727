package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"

	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// defaultCaseTimeout is a table case's timeout unless it sets one.
const defaultCaseTimeout = 3 * time.Second

// newCheck returns c with defaults applied and values derived, as the
// loaders hand checks to the probers.
func newCheck(c config.Check) *config.Check {
	c.ApplyDefaults()
	return &c
}

// runProbe runs the prober of tg's check type the way the scheduler does:
// with a context whose timeout is the check's timeout.
func runProbe(t *testing.T, parent context.Context, tg Target) Result {
	t.Helper()
	f, ok := Lookup(tg.Check.Type)
	if !ok {
		t.Fatalf("no prober for type %q", tg.Check.Type)
	}
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithTimeout(parent, tg.Check.Timeout)
	defer cancel()
	return f(ctx, tg)
}

// tableCase is what runTable needs from one row of a prober's table.
type tableCase struct {
	name     string
	check    config.Check // Name is set from name, Timeout defaults to defaultCaseTimeout
	address  string       // Target.Address, "" for none
	ctx      context.Context
	wantType string
}

// runTable runs every row in parallel against its prober, requires the
// outcome and bookkeeping assertResult checks, then calls verify (if set).
func runTable[T any](t *testing.T, rows []T, row func(T) tableCase, verify func(t *testing.T, tc T, c *config.Check, res Result)) {
	t.Helper()
	t.Run("group", func(t *testing.T) {
		for _, r := range rows {
			tc := row(r)
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.check.Name = tc.name
				if tc.check.Timeout == 0 {
					tc.check.Timeout = defaultCaseTimeout
				}
				c := newCheck(tc.check)
				tg := Target{Check: c, Propagator: propagation.TraceContext{}}
				if tc.address != "" {
					tg.Address = netip.MustParseAddrPort(tc.address)
				}
				res := runProbe(t, tc.ctx, tg)
				assertResult(t, res, tc.wantType, c.Timeout)
				if verify != nil {
					verify(t, r, c, res)
				}
			})
		}
	})
}

// assertResult checks the outcome every table case states, and the
// bookkeeping every result must have.
func assertResult(t *testing.T, res Result, wantType string, timeout time.Duration) {
	t.Helper()
	t.Logf("success=%v type=%q phases=%v duration=%v message=%q", res.Success, res.ErrorType, phaseNames(res), res.Duration, res.Message)
	if wantType == "" && !res.Success {
		t.Fatalf("run failed: type %q reason %q message %q", res.ErrorType, res.Reason, res.Message)
	}
	if wantType != "" {
		if res.Success {
			t.Fatalf("run succeeded (%q), want error.type %q", res.Message, wantType)
		}
		if res.ErrorType != wantType {
			t.Fatalf("error.type = %q (reason %q), want %q", res.ErrorType, res.Reason, wantType)
		}
		if res.Reason == "" {
			t.Error("failed run has no reason")
		}
	}
	if res.Start.IsZero() || res.Duration <= 0 {
		t.Errorf("start %v duration %v: not measured", res.Start, res.Duration)
	}
	// The prober must come back within the check's timeout (plus slack for
	// a loaded 2-core machine), never hang past it.
	if timeout > 0 && res.Duration > timeout+time.Second {
		t.Errorf("run took %v, timeout was %v", res.Duration, timeout)
	}
	end := res.Start.Add(res.Duration)
	for _, p := range res.Phases {
		if p.End.Before(p.Start) || p.Start.Before(res.Start) || p.End.After(end) {
			t.Errorf("phase %s [%v, %v] outside run [%v, %v] or reversed", p.Name, p.Start, p.End, res.Start, end)
		}
	}
}

// phaseNames lists a result's phase names in order.
func phaseNames(res Result) []string {
	names := make([]string, len(res.Phases))
	for i, p := range res.Phases {
		names[i] = p.Name
	}
	return names
}

// peerIs reports whether res dialled the loopback address 127.0.0.1 (and
// port, when not "").
func peerIs(res Result, port string) bool {
	if res.Peer.Addr() != netip.MustParseAddr("127.0.0.1") {
		return false
	}
	return port == "" || strconv.Itoa(int(res.Peer.Port())) == port
}

// testPKI is a private CA and the certificates the TLS tests present.
type testPKI struct {
	caFile       string // PEM of the CA, for TLSOptions.CAFile
	valid        tls.Certificate
	selfSigned   tls.Certificate
	expired      tls.Certificate
	expiring     tls.Certificate // 3 days left
	wrongHost    tls.Certificate
	validNotAft  time.Time
	overrideHost string // a name only the valid certificate carries
	ca           *x509.Certificate
	caKey        *ecdsa.PrivateKey
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "heartbeat test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	localhost := []net.IP{net.IPv4(127, 0, 0, 1)}
	p := &testPKI{caFile: caFile, overrideHost: "heartbeat.test", ca: ca, caKey: caKey}
	p.validNotAft = now.Add(90 * 24 * time.Hour).Truncate(time.Second)
	p.valid = leafCert(t, ca, caKey, "valid", []string{"localhost", p.overrideHost}, localhost, now.Add(-time.Hour), p.validNotAft)
	p.selfSigned = leafCert(t, nil, nil, "self-signed", []string{"localhost"}, localhost, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	p.expired = leafCert(t, ca, caKey, "expired", []string{"localhost"}, localhost, now.Add(-60*24*time.Hour), now.Add(-24*time.Hour))
	p.expiring = leafCert(t, ca, caKey, "expiring", []string{"localhost"}, localhost, now.Add(-time.Hour), now.Add(3*24*time.Hour))
	p.wrongHost = leafCert(t, ca, caKey, "wrong-host", []string{"other.example"}, nil, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// leafCert issues a server certificate; a nil parent makes it self-signed.
func leafCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, cn string,
	dnsNames []string, ips []net.IP, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key := newKey(t)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent, parentKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestRegistryCoversEveryType(t *testing.T) {
	for _, typ := range config.Types() {
		if f, ok := Lookup(typ); !ok || f == nil {
			t.Errorf("Lookup(%q) = %v, %v; want a prober", typ, f, ok)
		}
	}
	if got, want := len(registry()), len(config.Types()); got != want {
		t.Errorf("registry has %d probers for %d check types", got, want)
	}
	for _, typ := range []string{"", "ping", "HTTP"} {
		if _, ok := Lookup(typ); ok {
			t.Errorf("Lookup(%q) found a prober, want none", typ)
		}
	}
}

func TestRunGuards(t *testing.T) {
	res := Run(context.Background(), func(context.Context, Target) Result { panic("boom") },
		Target{Check: newCheck(config.Check{Type: config.TypeTCP, Target: "127.0.0.1:1"})})
	if res.Success || res.ErrorType != ErrOther || !strings.Contains(res.Reason, "boom") {
		t.Errorf("panicking prober: got %+v, want a failed run with error.type other", res)
	}
	f, _ := Lookup(config.TypeHTTP)
	if res := Run(context.Background(), f, Target{}); res.Success || res.ErrorType != ErrOther {
		t.Errorf("nil check: got %+v, want a failed run with error.type other", res)
	}
	res = Run(context.Background(), func(context.Context, Target) Result { return Result{} },
		Target{Check: newCheck(config.Check{Type: config.TypeTCP, Target: "127.0.0.1:1"})})
	if res.Start.IsZero() || res.Duration <= 0 || res.ErrorType != ErrOther {
		t.Errorf("empty result: got %+v, want start, duration and error.type other filled in", res)
	}
}

// TestHangingTargetsReleaseEverything runs every prober against targets that
// never answer and, while those targets still hold their end open, requires
// each run to give back every goroutine and socket it made: cleanup must not
// depend on the peer closing.
func TestHangingTargetsReleaseEverything(t *testing.T) {
	hanging, accepted := testkit.BlackHole(t)
	silent := silentUDP(t)
	base := testkit.Snapshot(t)
	timeout := 200 * time.Millisecond
	checks := []config.Check{
		{Type: config.TypeHTTP, Target: "http://" + hanging + "/"},
		{Type: config.TypeHTTP, Target: "https://" + hanging + "/"},
		{Type: config.TypeTCP, Target: hanging, TCP: config.TCPOptions{Expect: regexp.MustCompile(".")}},
		{Type: config.TypeTCP, Target: hanging, TCP: config.TCPOptions{UseTLS: true}},
		{Type: config.TypeTLS, Target: hanging},
		{Type: config.TypeGRPC, Target: hanging},
		{Type: config.TypeGRPC, Target: hanging, GRPC: config.GRPCOptions{UseTLS: true}},
		{Type: config.TypeDNS, Target: "example.test", DNS: config.DNSOptions{Server: silent}},
	}
	runTable(t, checks, func(c config.Check) tableCase {
		c.Timeout = timeout
		return tableCase{name: c.Type + " " + c.Target, check: c, wantType: ErrTimeout}
	}, nil)
	// The hanging server's accepted sockets are still open, by design.
	base.FDs += accepted()
	testkit.WaitBaseline(t, base, 5*time.Second)
}
