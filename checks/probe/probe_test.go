package probe

import (
	"bytes"
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
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// runProbe runs probe the way the scheduler does: with a context whose
// timeout is the check's timeout.
func runProbe(t *testing.T, probe ProbeFunc, tg Target) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), tg.Check.Timeout)
	defer cancel()
	return probe(ctx, tg)
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

// checkLeaks records goroutine and file-descriptor counts now and, when the
// test (and its subtests and cleanups registered later) end, requires both
// to come back to that baseline within a deadline.
func checkLeaks(t *testing.T) {
	t.Helper()
	warmUp(t)
	goroutines := runtime.NumGoroutine()
	fds := countFDs(t)
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			g, f := runtime.NumGoroutine(), countFDs(t)
			if g <= goroutines && f <= fds {
				return
			}
			if time.Now().After(deadline) {
				var buf bytes.Buffer
				_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
				t.Errorf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s\n%s",
					g, goroutines, f, fds, listFDs(), buf.String())
				return
			}
			time.Sleep(10 * time.Millisecond) // polling interval, not a signal
		}
	})
}

// warmUp opens the process-wide descriptors the runtime creates lazily on
// first network use (netpoller), so they do not count as leaks.
func warmUp(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	ln.Close()
}

func countFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(entries)
}

func listFDs() string {
	entries, _ := os.ReadDir("/proc/self/fd")
	var b strings.Builder
	for _, e := range entries {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		b.WriteString(e.Name() + " -> " + target + "\n")
	}
	return b.String()
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// hangingListener accepts connections and never answers; it closes them
// when the test ends.
func hangingListener(t *testing.T) string {
	t.Helper()
	addr, _ := hangingListenerCount(t)
	return addr
}

// hangingListenerCount is hangingListener that also reports how many
// connections it has accepted (and holds open).
func hangingListenerCount(t *testing.T) (string, func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
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
	p := &testPKI{caFile: caFile, overrideHost: "heartbeat.test"}
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

func TestProberFor(t *testing.T) {
	for _, typ := range []string{config.TypeHTTP, config.TypeTCP, config.TypeTLS, config.TypeDNS, config.TypeGRPC} {
		if f, ok := proberFor(typ); !ok || f == nil {
			t.Errorf("proberFor(%q) = %v, %v; want a prober", typ, f, ok)
		}
	}
	for _, typ := range []string{"", "icmp", "HTTP"} {
		if _, ok := proberFor(typ); ok {
			t.Errorf("proberFor(%q) found a prober, want none", typ)
		}
	}
}

func TestGuard(t *testing.T) {
	res := guard(func(context.Context, Target) Result { panic("boom") })(context.Background(),
		Target{Check: &config.Check{Type: config.TypeTCP, Target: "127.0.0.1:1"}})
	if res.Success || res.ErrorType != ErrOther || !strings.Contains(res.Reason, "boom") {
		t.Errorf("panicking prober: got %+v, want a failed run with error.type other", res)
	}
	f, _ := proberFor(config.TypeHTTP)
	if res := f(context.Background(), Target{}); res.Success || res.ErrorType != ErrOther {
		t.Errorf("nil check: got %+v, want a failed run with error.type other", res)
	}
}

func TestPhaseDurations(t *testing.T) {
	t0 := time.Now()
	r := Result{Phases: []PhaseTiming{
		{Name: PhaseConnect, Start: t0, End: t0.Add(2 * time.Millisecond)},
		{Name: PhaseTTFB, Start: t0, End: t0.Add(5 * time.Millisecond)},
		{Name: PhaseConnect, Start: t0, End: t0.Add(3 * time.Millisecond)},
	}}
	got := phaseDurations(r)
	if got[PhaseConnect] != 5*time.Millisecond || got[PhaseTTFB] != 5*time.Millisecond || len(got) != 2 {
		t.Errorf("phaseDurations = %v", got)
	}
}

// TestHangingTargetsReleaseEverything runs every prober against targets that
// never answer and, while those targets still hold their end open, requires
// each run to give back every goroutine and socket it made: cleanup must not
// depend on the peer closing.
func TestHangingTargetsReleaseEverything(t *testing.T) {
	hanging, accepted := hangingListenerCount(t)
	silent := silentUDP(t)
	warmUp(t)
	goroutines, fds := runtime.NumGoroutine(), countFDs(t)
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
	t.Run("group", func(t *testing.T) {
		for i := range checks {
			c := &checks[i]
			c.Name, c.Timeout = c.Type+" "+c.Target, timeout
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				probe, _ := proberFor(c.Type)
				res := runProbe(t, probe, Target{Check: c})
				assertResult(t, res, ErrTimeout, timeout)
			})
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), countFDs(t)
		// The hanging server's accepted sockets are still open, by design.
		if g <= goroutines && f <= fds+accepted() {
			return
		}
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("leak: goroutines %d (baseline %d), fds %d (baseline %d + %d held by the target)\n%s\n%s",
				g, goroutines, f, fds, accepted(), listFDs(), buf.String())
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a signal
	}
}
