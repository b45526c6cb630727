package probe

import (
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// TestHTTPHeaderNotMatchesAndSSL covers header_not_matches, fail_if_ssl
// and fail_if_not_ssl against real servers.
func TestHTTPHeaderNotMatchesAndSSL(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	plain := newTestServer(t, nil)
	secure := newTestServer(t, &pki.valid)
	re := regexp.MustCompile
	ca := config.TLSOptions{CAFile: pki.caFile}
	type row = struct {
		name, url string
		opts      config.HTTPOptions
		wantType  string
	}
	rows := []row{
		{name: "header does not match", url: plain.URL + "/ok", opts: config.HTTPOptions{HeaderNotMatches: []config.HeaderMatch{{Header: "Content-Type", Regexp: re("json")}}}},
		{name: "header absent", url: plain.URL + "/ok", opts: config.HTTPOptions{HeaderNotMatches: []config.HeaderMatch{{Header: "X-Degraded", Regexp: re(".")}}}},
		{name: "header matches", url: plain.URL + "/ok", opts: config.HTTPOptions{HeaderNotMatches: []config.HeaderMatch{{Header: "Server-Timing", Regexp: re("^app;")}}},
			wantType: ErrHeaderMismatch},
		{name: "fail_if_ssl over TLS", url: secure.URL + "/ok", opts: config.HTTPOptions{FailIfSSL: true}, wantType: ErrTLS},
		{name: "fail_if_ssl in cleartext", url: plain.URL + "/ok", opts: config.HTTPOptions{FailIfSSL: true}},
		{name: "fail_if_not_ssl in cleartext", url: plain.URL + "/ok", opts: config.HTTPOptions{FailIfNotSSL: true}, wantType: ErrTLS},
		{name: "fail_if_not_ssl over TLS", url: secure.URL + "/ok", opts: config.HTTPOptions{FailIfNotSSL: true}},
	}
	runTable(t, rows, func(r row) tableCase {
		return tableCase{name: r.name, wantType: r.wantType, check: config.Check{Type: config.TypeHTTP, Target: r.url, TLS: ca, HTTP: r.opts}}
	}, func(t *testing.T, r row, _ *config.Check, res Result) {
		if r.wantType == ErrHeaderMismatch && res.Reason != `header Server-Timing matches "^app;"` {
			t.Errorf("reason %q names no header and pattern", res.Reason)
		}
	})
}

// forwardProxy is an HTTP proxy: it forwards absolute-form requests and
// tunnels CONNECT, when the request carries the Proxy-Authorization auth
// (if set), and counts what it served.
func forwardProxy(t *testing.T, auth string) (proxyURL string, served *atomic.Int64) {
	t.Helper()
	served = &atomic.Int64{}
	transport := &http.Transport{Proxy: nil}
	t.Cleanup(transport.CloseIdleConnections)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth != "" && r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte(auth)) {
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		served.Add(1)
		if r.Method == http.MethodConnect {
			tunnel(w, r.Host)
			return
		}
		out, err := http.NewRequestWithContext(r.Context(), r.Method, r.URL.String(), r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		out.Header = r.Header.Clone()
		out.Header.Del("Proxy-Authorization")
		resp, err := transport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, served
}

// tunnel answers a CONNECT and copies bytes both ways until one side ends.
func tunnel(w http.ResponseWriter, addr string) {
	upstream, err := net.Dial("tcp", addr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer upstream.Close()
	w.WriteHeader(http.StatusOK)
	client, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer client.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(upstream, buf)
		upstream.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	// Hidden behind a plain Writer: TCPConn.ReadFrom would splice through
	// pooled pipes, which outlive the test and read as leaked descriptors.
	io.Copy(struct{ io.Writer }{client}, upstream)
	client.Close()
	<-done
}

// TestHTTPProxy sends http and https checks through a real forward proxy,
// with and without its credentials.
func TestHTTPProxy(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	plain := newTestServer(t, nil)
	secure := protoServer(t, &pki.valid, "http/1.1", "h2")
	open, openServed := forwardProxy(t, "")
	locked, lockedServed := forwardProxy(t, "probe:"+testSecret)
	withAuth, _ := url.Parse(locked)
	withAuth.User = url.UserPassword("probe", testSecret)
	type row = struct {
		name, target, proxy string
		wantType            string
		wantVersion         string
	}
	rows := []row{
		{name: "http through the proxy", target: plain.URL + "/ok", proxy: open, wantVersion: "1.1"},
		{name: "https tunnelled, h2 inside", target: secure.URL, proxy: open, wantVersion: "2"},
		{name: "credentials", target: plain.URL + "/ok", proxy: withAuth.String(), wantVersion: "1.1"},
		{name: "credentials for CONNECT", target: secure.URL, proxy: withAuth.String(), wantVersion: "2"},
		{name: "no credentials", target: plain.URL + "/ok", proxy: locked, wantType: ErrStatusCode},
		{name: "proxy down", target: plain.URL + "/ok", proxy: "http://" + testkit.ClosedAddr(t), wantType: ErrConnectionRefused},
	}
	runTable(t, rows, func(r row) tableCase {
		u, err := url.Parse(r.proxy)
		if err != nil {
			t.Fatal(err)
		}
		return tableCase{name: r.name, wantType: r.wantType, check: config.Check{Type: config.TypeHTTP, Target: r.target,
			TLS: config.TLSOptions{CAFile: pki.caFile}, HTTP: config.HTTPOptions{ProxyURL: (*config.ProxyURL)(u)}}}
	}, func(t *testing.T, r row, _ *config.Check, res Result) {
		if res.ProtocolVersion != r.wantVersion && r.wantType == "" {
			t.Errorf("protocol version %q, want %q", res.ProtocolVersion, r.wantVersion)
		}
		for _, s := range []string{res.Reason, res.Message} {
			if regexp.MustCompile(regexp.QuoteMeta(testSecret)).MatchString(s) {
				t.Errorf("proxy password leaked: %q", s)
			}
		}
	})
	if openServed.Load() != 2 || lockedServed.Load() != 2 {
		t.Errorf("proxies served %d and %d requests, want 2 each", openServed.Load(), lockedServed.Load())
	}
}
