package probe

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// protoServer starts a server answering with the protocol the request
// came over ("HTTP/2.0"), speaking the protocols p allows: over TLS with
// cert, else in cleartext.
func protoServer(t *testing.T, cert *tls.Certificate, protos ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	var p http.Protocols
	for _, proto := range protos {
		switch proto {
		case "http/1.1":
			p.SetHTTP1(true)
		case "h2":
			p.SetHTTP2(true)
		case "h2c":
			p.SetUnencryptedHTTP2(true)
		}
	}
	srv.Config.Protocols = &p
	if cert == nil {
		srv.Start()
	} else {
		srv.TLS = &tls.Config{Certificates: []tls.Certificate{*cert}}
		if p.HTTP2() {
			srv.EnableHTTP2 = true
			srv.TLS.NextProtos = []string{"h2", "http/1.1"}
		}
		srv.StartTLS()
	}
	t.Cleanup(srv.Close)
	return srv
}

// TestHTTPNegotiatesHTTP2 requires an https check to offer h2 and
// http/1.1 by ALPN, as Go's default transport does: a server speaking
// both gets HTTP/2, an HTTP/2-only server passes.
func TestHTTPNegotiatesHTTP2(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	both := protoServer(t, &pki.valid, "http/1.1", "h2")
	h2Only := protoServer(t, &pki.valid, "h2")
	h1Only := protoServer(t, &pki.valid, "http/1.1")
	type row = struct {
		name, url, want string
	}
	rows := []row{
		{"h2 and http/1.1 server", both.URL, "HTTP/2.0"},
		{"h2-only server", h2Only.URL, "HTTP/2.0"},
		{"http/1.1-only server", h1Only.URL, "HTTP/1.1"},
	}
	runTable(t, rows, func(r row) tableCase {
		return tableCase{name: r.name, check: config.Check{Type: config.TypeHTTP, Target: r.url,
			TLS:  config.TLSOptions{CAFile: pki.caFile},
			HTTP: config.HTTPOptions{BodyMatches: []*regexp.Regexp{regexp.MustCompile("^" + regexp.QuoteMeta(r.want) + "$")}}}}
	}, nil)
}
