package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

const (
	testSecret      = "s3cret-PASSWORD"
	testTokenSecret = "tok-SECRET-value"
	// testTraceparent is what propagation.TraceContext writes for testSpanContext.
	testTraceparent = "00-0102030405060708090a0b0c0d0e0f10-0102030405060708-01"
)

func testSpanContext() trace.SpanContext {
	return trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:     trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled,
	})
}

// testMux serves every behaviour the http cases probe.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Server-Timing", "db;dur=5")
		w.Header().Add("Server-Timing", `app;dur=12.5;desc="all"`)
		io.WriteString(w, "0123456789ABCDEF0123456789ABCDEF")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.PathValue("code"))
		w.WriteHeader(code)
	})
	mux.HandleFunc("/redirect/{n}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.PathValue("n"))
		if n <= 0 {
			io.WriteString(w, "arrived")
			return
		}
		http.Redirect(w, r, fmt.Sprintf("/redirect/%d", n-1), http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop", http.StatusFound)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("X-Token") != testTokenSecret ||
			string(body) != "ping" || r.Host != "virtual.example" || r.UserAgent() != "custom-agent" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "pong")
	})
	mux.HandleFunc("/secret-echo", func(w http.ResponseWriter, r *http.Request) {
		// A hostile target echoing the token back in a failing answer.
		w.Header().Set("X-Echo", r.Header.Get("X-Token"))
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, r.Header.Get("X-Token"))
	})
	mux.HandleFunc("/traceparent", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("traceparent"); got != testTraceparent {
			http.Error(w, "traceparent "+got, http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/basic", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != testSecret {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	mux.HandleFunc("/host", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Host, "heartbeat.test:") {
			w.WriteHeader(http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n0123456789")
		buf.Flush()
		conn.(*net.TCPConn).SetLinger(0) // close with RST, mid-body
		conn.Close()
	})
	mux.HandleFunc("/truncated", func(w http.ResponseWriter, _ *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
		buf.Flush()
		conn.Close() // clean FIN, 90 bytes short
	})
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "0123456789")
		w.(http.Flusher).Flush()
		<-r.Context().Done() // hold the body open until the client gives up
	})
	mux.HandleFunc("/infinite", func(w http.ResponseWriter, _ *http.Request) {
		chunk := bytes.Repeat([]byte("0123456789ABCDEF"), 4096)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	return mux
}

// newTestServer starts an httptest server of testMux (TLS when cert is
// non-nil).
func newTestServer(t *testing.T, cert *tls.Certificate) *httptest.Server {
	t.Helper()
	return startTestServer(t, testMux(), cert, nil)
}

// startTestServer starts an httptest server for h that keeps handshake
// noise out of the test log: over TLS with cert when it is non-nil, set up
// by tune (when not nil) before it starts.
func startTestServer(t *testing.T, h http.Handler, cert *tls.Certificate, tune func(*httptest.Server)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tune != nil {
		tune(srv)
	}
	if cert != nil {
		if srv.TLS == nil {
			srv.TLS = &tls.Config{}
		}
		srv.TLS.Certificates = []tls.Certificate{*cert}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTPProbe(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	plain := newTestServer(t, nil)
	valid := newTestServer(t, &pki.valid)
	selfSigned := newTestServer(t, &pki.selfSigned)
	expired := newTestServer(t, &pki.expired)
	expiring := newTestServer(t, &pki.expiring)
	wrongHost := newTestServer(t, &pki.wrongHost)
	hanging, _ := testkit.BlackHole(t)
	closed := testkit.ClosedAddr(t)
	_, validPort, _ := net.SplitHostPort(valid.Listener.Addr().String())
	_, plainPort, _ := net.SplitHostPort(plain.Listener.Addr().String())
	ca := config.TLSOptions{CAFile: pki.caFile}
	re := regexp.MustCompile

	type row = struct {
		name     string
		target   string
		http     config.HTTPOptions
		tls      config.TLSOptions
		timeout  time.Duration
		address  string
		ctx      context.Context
		wantType string
		verify   func(t *testing.T, res Result)
	}
	tests := []row{
		// GoHeartbeat's cases.
		{name: "GoHeartbeat URL success", target: plain.URL + "/ok", verify: func(t *testing.T, res Result) {
			if want := plain.URL + "/ok: 200 OK over HTTP/1.1"; res.Message != want {
				t.Errorf("message %q, want %q", res.Message, want)
			}
			if res.StatusCode != 200 || !peerIs(res, plainPort) {
				t.Errorf("status %d server %s", res.StatusCode, res.Peer)
			}
			if want := []string{PhaseConnect, PhaseRequest, PhaseProcessing, PhaseTransfer}; !slices.Equal(phaseNames(res), want) {
				t.Errorf("phases %v, want %v", phaseNames(res), want)
			}
			if !res.HasServerTiming || res.ServerTiming != 12500*time.Microsecond {
				t.Errorf("server timing %v %v, want 12.5ms", res.ServerTiming, res.HasServerTiming)
			}
			if !res.CertExpiry.IsZero() {
				t.Errorf("cert expiry %v on plain http", res.CertExpiry)
			}
		}},
		{name: "GoHeartbeat URL empty", target: "", wantType: ErrOther},
		{name: "GoHeartbeat URL unknown host", target: "http://nonexistent.invalid/", wantType: ErrDNS, verify: func(t *testing.T, res Result) {
			if !strings.Contains(res.Reason, "nonexistent.invalid") {
				t.Errorf("reason %q does not name the host", res.Reason)
			}
		}},
		{name: "GoHeartbeat URL timeout", target: "http://" + hanging + "/", timeout: 200 * time.Millisecond, wantType: ErrTimeout,
			verify: func(t *testing.T, res Result) {
				if !strings.Contains(res.Reason, "during "+PhaseProcessing) {
					t.Errorf("reason %q does not name the phase", res.Reason)
				}
			}},
		{name: "TLS handshake timeout", target: "https://" + hanging + "/", timeout: 200 * time.Millisecond, wantType: ErrTimeout},
		{name: "connection refused", target: "http://" + closed + "/", wantType: ErrConnectionRefused},
		{name: "bad scheme", target: "ftp://127.0.0.1/", wantType: ErrOther},

		// Status codes.
		{name: "500 fails default 2xx", target: plain.URL + "/status/500", wantType: ErrStatusCode, verify: wantStatus(500)},
		{name: "204 passes default 2xx", target: plain.URL + "/status/204", verify: wantStatus(204)},
		{name: "404 listed passes", target: plain.URL + "/status/404", http: config.HTTPOptions{ValidStatusCodes: []int{404}}},
		{name: "200 not listed fails", target: plain.URL + "/ok", http: config.HTTPOptions{ValidStatusCodes: []int{404}}, wantType: ErrStatusCode},

		// Body and header assertions.
		{name: "body matches", target: plain.URL + "/ok", http: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("^0123"), re("CDEF$")}}},
		{name: "body does not match", target: plain.URL + "/ok", http: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("^XYZ")}}, wantType: ErrBodyMismatch},
		{name: "body not-match passes", target: plain.URL + "/ok", http: config.HTTPOptions{BodyNotMatches: []*regexp.Regexp{re("error")}}},
		{name: "body not-match fails", target: plain.URL + "/ok", http: config.HTTPOptions{BodyNotMatches: []*regexp.Regexp{re("89AB")}}, wantType: ErrBodyMismatch},
		{name: "header matches", target: plain.URL + "/ok", http: config.HTTPOptions{HeaderMatches: []config.HeaderMatch{{Header: "content-type", Regexp: re("^text/plain")}}}},
		{name: "header does not match", target: plain.URL + "/ok", http: config.HTTPOptions{HeaderMatches: []config.HeaderMatch{{Header: "Content-Type", Regexp: re("^application/json")}}}, wantType: ErrHeaderMismatch},
		{name: "header missing", target: plain.URL + "/ok", http: config.HTTPOptions{HeaderMatches: []config.HeaderMatch{{Header: "X-Missing", Regexp: re(".")}}}, wantType: ErrHeaderMismatch},

		// Request shaping.
		{name: "method headers body host", target: plain.URL + "/echo", http: config.HTTPOptions{
			Method: "POST", Body: "ping",
			Headers: map[string]string{"X-Token": testTokenSecret, "Host": "virtual.example", "User-Agent": "custom-agent"},
		}},
		{name: "traceparent sent", target: plain.URL + "/traceparent",
			ctx: trace.ContextWithSpanContext(context.Background(), testSpanContext())},
		{name: "basic auth from URL", target: "http://user:" + testSecret + "@" + plain.Listener.Addr().String() + "/basic", verify: func(t *testing.T, res Result) {
			if strings.Contains(res.Message, testSecret) || !strings.Contains(res.Message, "user:xxxxx@") {
				t.Errorf("message %q: password not redacted", res.Message)
			}
		}},

		{name: "basic auth from config", target: plain.URL + "/basic", http: config.HTTPOptions{BasicAuth: &config.BasicAuth{Username: "user", Password: testSecret}}},
		{name: "basic auth wrong password", target: plain.URL + "/basic", http: config.HTTPOptions{BasicAuth: &config.BasicAuth{Username: "user", Password: testTokenSecret}},
			wantType: ErrStatusCode, verify: wantStatus(401)},
		{name: "basic auth from config wins over URL", target: "http://user:wrong@" + plain.Listener.Addr().String() + "/basic",
			http: config.HTTPOptions{BasicAuth: &config.BasicAuth{Username: "user", Password: testSecret}}},

		// Secrets stay out of failures.
		{name: "URL password not in failure", target: "http://user:" + testSecret + "@" + plain.Listener.Addr().String() + "/status/500", wantType: ErrStatusCode},
		{name: "URL password not in dns failure", target: "http://user:" + testSecret + "@nonexistent.invalid/", wantType: ErrDNS},
		{name: "URL password not in refused", target: "http://user:" + testSecret + "@" + closed + "/?token=x", wantType: ErrConnectionRefused},
		{name: "token echoed by target not in failure", target: plain.URL + "/secret-echo",
			http: config.HTTPOptions{Headers: map[string]string{"X-Token": testTokenSecret},
				HeaderMatches: []config.HeaderMatch{{Header: "X-Echo", Regexp: re("^nothing$")}}}, wantType: ErrStatusCode},
		{name: "token echoed in header not in mismatch", target: plain.URL + "/secret-echo",
			http: config.HTTPOptions{Headers: map[string]string{"X-Token": testTokenSecret}, ValidStatusCodes: []int{403},
				HeaderMatches: []config.HeaderMatch{{Header: "X-Echo", Regexp: re("^nothing$")}}}, wantType: ErrHeaderMismatch},
		{name: "token echoed in body not in mismatch", target: plain.URL + "/secret-echo",
			http: config.HTTPOptions{Headers: map[string]string{"X-Token": testTokenSecret}, ValidStatusCodes: []int{403},
				BodyMatches: []*regexp.Regexp{re("^nothing$")}}, wantType: ErrBodyMismatch},

		// Redirects.
		{name: "redirects followed", target: plain.URL + "/redirect/3", verify: func(t *testing.T, res Result) {
			if n := strings.Count(strings.Join(phaseNames(res), " "), PhaseConnect); n != 4 {
				t.Errorf("%d connect phases over 3 redirects, want 4 (a fresh connection per hop): %v", n, phaseNames(res))
			}
		}},
		{name: "redirect not followed", target: plain.URL + "/redirect/1", http: config.HTTPOptions{NoFollowRedirects: true}, wantType: ErrStatusCode, verify: wantStatus(302)},
		{name: "redirect not followed, 302 valid", target: plain.URL + "/redirect/1", http: config.HTTPOptions{NoFollowRedirects: true, ValidStatusCodes: []int{302}}},
		{name: "redirect loop", target: plain.URL + "/loop", wantType: ErrRedirects},
		{name: "more redirects than max", target: plain.URL + "/redirect/3", http: config.HTTPOptions{MaxRedirects: 2}, wantType: ErrRedirects},
		{name: "redirects within max", target: plain.URL + "/redirect/2", http: config.HTTPOptions{MaxRedirects: 2}},

		// Hostile targets.
		{name: "reset mid-body", target: plain.URL + "/reset", wantType: ErrConnectionReset},
		{name: "truncated body", target: plain.URL + "/truncated", wantType: ErrConnectionReset},
		{name: "truncated body kept for regexp", target: plain.URL + "/truncated",
			http: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("^0123")}}, wantType: ErrConnectionReset},
		{name: "infinite body", target: plain.URL + "/infinite", timeout: 300 * time.Millisecond, wantType: ErrTimeout},
		{name: "infinite body kept for regexp", target: plain.URL + "/infinite", timeout: 300 * time.Millisecond,
			http: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("x")}}, wantType: ErrTimeout},
		{name: "body stalls", target: plain.URL + "/stall", timeout: 200 * time.Millisecond, wantType: ErrTimeout,
			verify: func(t *testing.T, res Result) {
				if !strings.Contains(res.Reason, "during "+PhaseTransfer) || res.StatusCode != 200 {
					t.Errorf("reason %q status %d: want a timeout during transfer after a 200", res.Reason, res.StatusCode)
				}
			}},

		// TLS.
		{name: "TLS valid with CA file", target: valid.URL + "/ok", tls: ca, verify: func(t *testing.T, res Result) {
			if !res.CertExpiry.Equal(pki.validNotAft) {
				t.Errorf("cert expiry %v, want %v", res.CertExpiry, pki.validNotAft)
			}
			if want := []string{PhaseConnect, PhaseTLS, PhaseRequest, PhaseProcessing, PhaseTransfer}; !slices.Equal(phaseNames(res), want) {
				t.Errorf("phases %v, want %v", phaseNames(res), want)
			}
		}},
		{name: "TLS valid without CA", target: valid.URL + "/ok", wantType: ErrTLS},
		{name: "TLS valid, min days ok", target: valid.URL + "/ok", tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 30}},
		{name: "TLS self-signed", target: selfSigned.URL + "/ok", tls: ca, wantType: ErrTLS},
		{name: "TLS self-signed, verify off", target: selfSigned.URL + "/ok", tls: config.TLSOptions{InsecureSkipVerify: true}},
		{name: "TLS expired", target: expired.URL + "/ok", tls: ca, wantType: ErrTLS},
		{name: "TLS expired, verify off, min days", target: expired.URL + "/ok", tls: config.TLSOptions{InsecureSkipVerify: true, MinDaysLeft: 1}, wantType: ErrCertExpiring},
		{name: "TLS expiring in 3 days, min 14", target: expiring.URL + "/ok", tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 14}, wantType: ErrCertExpiring,
			verify: func(t *testing.T, res Result) {
				if res.StatusCode != 200 || res.CertExpiry.IsZero() {
					t.Errorf("status %d expiry %v: response not recorded", res.StatusCode, res.CertExpiry)
				}
			}},
		{name: "TLS expiring in 3 days, min 2", target: expiring.URL + "/ok", tls: config.TLSOptions{CAFile: pki.caFile, MinDaysLeft: 2}},
		{name: "TLS wrong hostname", target: wrongHost.URL + "/ok", tls: ca, wantType: ErrTLS},
		{name: "TLS wrong hostname, server name set", target: wrongHost.URL + "/ok", tls: config.TLSOptions{CAFile: pki.caFile, ServerName: "other.example"}},
		{name: "TLS to plain server", target: "https://" + plain.Listener.Addr().String() + "/ok", wantType: ErrTLS},
		{name: "missing CA file", target: valid.URL + "/ok", tls: config.TLSOptions{CAFile: "/nonexistent/ca.pem"}, wantType: ErrOther},

		// Target.Address: dial it, keep Host and SNI from the URL.
		{name: "address override TLS", target: "https://" + pki.overrideHost + ":" + validPort + "/host", tls: ca,
			address: valid.Listener.Addr().String(), verify: func(t *testing.T, res Result) {
				if !peerIs(res, validPort) {
					t.Errorf("dialled %s, want the override", res.Peer)
				}
			}},
		{name: "address override plain", target: "http://heartbeat.test:" + plainPort + "/host", address: plain.Listener.Addr().String()},
		{name: "address override to closed port", target: plain.URL + "/ok", address: closed, wantType: ErrConnectionRefused},
	}

	runTable(t, tests, func(tc row) tableCase {
		return tableCase{name: tc.name, address: tc.address, ctx: tc.ctx, wantType: tc.wantType,
			check: config.Check{Type: config.TypeHTTP, Target: tc.target, Timeout: tc.timeout, HTTP: tc.http, TLS: tc.tls}}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		for _, s := range []string{testSecret, testTokenSecret} {
			if strings.Contains(res.Reason+res.Message, s) {
				t.Errorf("secret leaked: reason %q message %q", res.Reason, res.Message)
			}
		}
		if !strings.HasPrefix(res.Message, check.DisplayTarget()+": ") {
			t.Errorf("message %q does not start with the target", res.Message)
		}
		if tc.verify != nil {
			tc.verify(t, res)
		}
	})
}

func wantStatus(code int) func(*testing.T, Result) {
	return func(t *testing.T, res Result) {
		t.Helper()
		if res.StatusCode != code {
			t.Errorf("status code %d, want %d", res.StatusCode, code)
		}
	}
}

// TestHTTPInfiniteBodyMemory pins that an endless body costs bounded memory
// until the timeout ends the run: discarded when no regexp needs it, its
// first max_body_bytes kept when one does.
func TestHTTPInfiniteBodyMemory(t *testing.T) {
	testkit.CheckLeaks(t)
	srv := newTestServer(t, nil)
	for _, tc := range []struct {
		name     string
		opts     config.HTTPOptions
		maxAlloc uint64
	}{
		{"discarded", config.HTTPOptions{}, 4 << 20},
		{"kept", config.HTTPOptions{BodyMatches: []*regexp.Regexp{regexp.MustCompile("x")}}, 3 * config.DefaultMaxBodyBytes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := newCheck(config.Check{Type: config.TypeHTTP, Target: srv.URL + "/infinite", Timeout: 2 * time.Second, HTTP: tc.opts})
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			res := runProbe(t, nil, Target{Check: check})
			runtime.ReadMemStats(&after)
			assertResult(t, res, ErrTimeout, check.Timeout)
			if res.BodyBytes <= config.DefaultMaxBodyBytes {
				t.Fatalf("read %d bytes in %v: too few to show the limit holds", res.BodyBytes, check.Timeout)
			}
			// TotalAlloc also counts the server's side, which writes from
			// one reused buffer.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > tc.maxAlloc {
				t.Errorf("allocated %d bytes reading %d bytes of an endless body, want <= %d", alloc, res.BodyBytes, tc.maxAlloc)
			}
		})
	}
}

// BenchmarkProbeHTTP measures one full http run (fresh connection, 64 KiB
// body, a body regexp) against a local server: the per-run cost the
// scheduler's CPU budget is built on.
func BenchmarkProbeHTTP(b *testing.B) {
	body := strings.Repeat("0123456789ABCDEF", 4096)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server-Timing", "app;dur=0.1")
		io.WriteString(w, body)
	}))
	defer srv.Close()
	check := newCheck(config.Check{Type: config.TypeHTTP, Target: srv.URL + "/heartbeat/65536", Timeout: 5 * time.Second,
		HTTP: config.HTTPOptions{BodyMatches: []*regexp.Regexp{regexp.MustCompile("^0123")}}})
	b.ReportAllocs()
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), check.Timeout)
		res := probeHTTP(ctx, Target{Check: check, Propagator: propagation.TraceContext{}})
		cancel()
		if !res.Success {
			b.Fatalf("run failed: %s", res.Reason)
		}
	}
}
