package probe

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// protoServer starts a server answering with the protocol the request
// came over ("HTTP/2.0"), speaking protos ("http/1.1", "h2", "h2c"): over
// TLS with cert, else in cleartext. A TLS server given none negotiates no
// ALPN protocol and speaks HTTP/1.1.
func protoServer(t *testing.T, cert *tls.Certificate, protos ...string) *httptest.Server {
	t.Helper()
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
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) })
	return startTestServer(t, handler, cert, func(srv *httptest.Server) {
		srv.Config.Protocols = &p
		switch {
		case cert != nil && len(protos) == 0:
			p.SetHTTP1(true)
			srv.TLS = &tls.Config{NextProtos: []string{}}
		case cert != nil && p.HTTP2():
			srv.EnableHTTP2 = true
			srv.TLS = &tls.Config{NextProtos: []string{"h2", "http/1.1"}}
		}
	})
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

// TestHTTPVersionOption covers http.version: 1.1 and 2 over TLS, h2c with
// prior knowledge in cleartext, and the version reported on the result,
// the message and the run's span.
func TestHTTPVersionOption(t *testing.T) {
	testkit.CheckLeaks(t)
	pki := newTestPKI(t)
	both := protoServer(t, &pki.valid, "http/1.1", "h2")
	h1Only := protoServer(t, &pki.valid, "http/1.1")
	h2c := protoServer(t, nil, "h2c")
	noALPN := protoServer(t, &pki.valid)
	plain := protoServer(t, nil, "http/1.1")
	type row = struct {
		name, url, version string
		want               string // protocol version; "" when the run fails
		wantType           string
	}
	rows := []row{
		{name: "default, TLS", url: both.URL, want: "2"},
		{name: "1.1 over TLS to an h2 server", url: both.URL, version: config.HTTPVersion1, want: "1.1"},
		{name: "2 over TLS", url: both.URL, version: config.HTTPVersion2, want: "2"},
		{name: "2 over TLS to an http/1.1-only server", url: h1Only.URL, version: config.HTTPVersion2, wantType: ErrTLS},
		{name: "2 over TLS to a server without ALPN", url: noALPN.URL, version: config.HTTPVersion2, wantType: ErrHTTPVersion},
		{name: "default, TLS without ALPN", url: noALPN.URL, want: "1.1"},
		{name: "default, cleartext", url: plain.URL, want: "1.1"},
		{name: "2 in cleartext is h2c", url: h2c.URL, version: config.HTTPVersion2, want: "2"},
		{name: "default to an h2c-only server", url: h2c.URL, wantType: ErrConnectionReset},
	}
	runTable(t, rows, func(r row) tableCase {
		return tableCase{name: r.name, wantType: r.wantType,
			check: config.Check{Type: config.TypeHTTP, Target: r.url, TLS: config.TLSOptions{CAFile: pki.caFile},
				HTTP: config.HTTPOptions{Version: r.version}}}
	}, func(t *testing.T, r row, _ *config.Check, res Result) {
		if r.wantType != "" {
			return
		}
		if res.ProtocolVersion != r.want {
			t.Errorf("protocol version %q, want %q", res.ProtocolVersion, r.want)
		}
		if !strings.HasSuffix(res.Message, ": 200 OK over HTTP/"+r.want) {
			t.Errorf("message %q does not name HTTP/%s", res.Message, r.want)
		}
	})
}

// TestHTTPVersionOnSpan requires the negotiated version and the body size
// on the run's span, as network.protocol.version and http.response.body.size.
func TestHTTPVersionOnSpan(t *testing.T) {
	pki := newTestPKI(t)
	srv := protoServer(t, &pki.valid, "http/1.1", "h2")
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("test").Start(context.Background(), "probe")
	check := newCheck(config.Check{Type: config.TypeHTTP, Target: srv.URL, Timeout: 3 * time.Second, TLS: config.TLSOptions{CAFile: pki.caFile}})
	res := runProbe(t, ctx, Target{Check: check})
	span.End()
	assertResult(t, res, "", check.Timeout)
	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	attrs := attribute.NewSet(ended[0].Attributes()...)
	if v, _ := attrs.Value(semconv.NetworkProtocolVersionKey); v.AsString() != "2" {
		t.Errorf("network.protocol.version = %q, want \"2\"", v.AsString())
	}
	if v, _ := attrs.Value(semconv.HTTPResponseBodySizeKey); v.AsInt64() != int64(len("HTTP/2.0")) || res.BodyBytes != v.AsInt64() {
		t.Errorf("http.response.body.size = %d, result's body bytes %d, want %d", v.AsInt64(), res.BodyBytes, len("HTTP/2.0"))
	}
}
