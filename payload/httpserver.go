package payload

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"
)

// Limits of the payload listener; each one cuts off one kind of hostile client.
const (
	readHeaderTimeout = 10 * time.Second // slowloris
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 32 << 10
)

// NewHTTPServer wraps h in the payload listener's limits, HTTP/1.1 and HTTP/2 on one port.
func NewHTTPServer(h http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	// Without TLS, cleartext HTTP/2 (h2c) too, so meshes can test both.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if tlsConfig != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	// No WriteTimeout: a whole-response bound would cut off slow but honest
	// readers of large bodies; the handler sets a per-chunk deadline instead.
	return &http.Server{
		Handler:           closeAfterChunked(h),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		Protocols:         &protocols,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// AdminHandler serves pprof; it belongs on its own listener, never on the payload port.
func AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// closeAfterChunked hangs up after every HTTP/1 request with a chunked body.
// When a request has both Content-Length and Transfer-Encoding: chunked, Go's
// server (Go 1.26) drops Content-Length and keeps the connection open,
// which RFC 9112 section 6.1 forbids: a front end that framed the request by
// Content-Length would take our answer to the bytes after the chunked body for
// the answer to its next request. A handler cannot see whether Content-Length
// was there, so any chunked request closes the connection; probes send
// Content-Length and keep theirs.
func closeAfterChunked(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
