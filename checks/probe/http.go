package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

const (
	// maxHeaderBytes caps the response header block.
	maxHeaderBytes = 1 << 20
	// userAgent identifies probes in target logs unless a check sets its own.
	userAgent = "heartbeat-probe"
)

// probeHTTP requests the check's URL over a fresh connection and applies its
// assertions: status code, headers, body regexps, certificate expiry. It
// puts url.full and http.request.method on the run's span.
func probeHTTP(ctx context.Context, t Target) Result {
	display := t.Check.DisplayTarget()
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(semconv.URLFullKey.String(display), semconv.HTTPRequestMethodKey.String(t.Check.HTTP.Method))
	}
	prefix := display + ": "
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		status, err := doHTTP(ctx, t, res, rec)
		return prefix + status, err
	}, func(reason string) string { return prefix + reason })
}

// doHTTP runs the request and returns the response's status line ("200 OK").
func doHTTP(ctx context.Context, t Target, res *Result, rec *recorder) (string, error) {
	c := t.Check
	opts := c.HTTP
	if c.URL == nil {
		return "", failf(ErrOther, "empty URL")
	}
	if c.URL.Scheme != "http" && c.URL.Scheme != "https" {
		return "", failf(ErrOther, "unsupported URL scheme %q", c.URL.Scheme)
	}

	tlsCfg, err := tlsConfig(c.TLS, "")
	if err != nil {
		return "", err
	}
	client, transport := newHTTPClient(ctx, t, tlsCfg)
	// Cancels a dial still in flight (net/http detaches dials from the
	// request's cancellation) so nothing outlives the run.
	defer transport.CloseIdleConnections()

	req, err := newRequest(httptrace.WithClientTrace(ctx, httpTrace(rec)), t)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	res.StatusCode = resp.StatusCode
	res.ProtocolVersion = protocolVersion(resp)
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		span.SetAttributes(semconv.NetworkProtocolVersion(res.ProtocolVersion))
	}
	if d, ok := parseServerTiming(strings.Join(resp.Header.Values("Server-Timing"), ", ")); ok {
		res.ServerTiming, res.HasServerTiming = d, true
	}
	certErr := checkCert(res, resp.TLS, c.TLS.MinDaysLeft)

	// The whole body is read even when no regexp needs it: the transfer
	// phase is part of what a heartbeat measures. Only the regexps' share
	// is kept; the timeout bounds the rest.
	var keep int64
	if len(opts.BodyMatches)+len(opts.BodyNotMatches) > 0 {
		keep = opts.MaxBodyBytes
	}
	body, err := readBody(resp.Body, keep, resp.ContentLength)
	res.BodyBytes = body.n
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPResponseBodySize(int(body.n)))
	}
	if err != nil {
		// The transfer phase stays open: finish closes it and names it in
		// a timeout's reason.
		return "", fmt.Errorf("reading body: %w", err)
	}
	rec.end(PhaseTransfer)
	if err := checkStatus(resp.StatusCode, opts.ValidStatusCodes); err != nil {
		return "", err
	}
	if err := checkHeaders(resp.Header, opts); err != nil {
		return "", err
	}
	if err := checkBody(body, opts); err != nil {
		return "", err
	}
	if err := checkSSL(resp.TLS != nil, opts); err != nil {
		return "", err
	}
	if opts.Version == config.HTTPVersion2 && resp.ProtoMajor != 2 {
		// A TLS server that negotiates no ALPN protocol gets HTTP/1.1.
		return "", failf(ErrHTTPVersion, "server answered over HTTP/%s; http.version is 2", res.ProtocolVersion)
	}
	if certErr != nil {
		return "", certErr
	}
	// GoHeartbeat's "200 OK", then the version: one line says both.
	return resp.Status + " over HTTP/" + res.ProtocolVersion, nil
}

// protocolVersion is the response's HTTP version as network.protocol.version
// spells it: "1.0", "1.1", "2".
func protocolVersion(resp *http.Response) string {
	if resp.ProtoMajor >= 2 && resp.ProtoMinor == 0 {
		return strconv.Itoa(resp.ProtoMajor)
	}
	return strconv.Itoa(resp.ProtoMajor) + "." + strconv.Itoa(resp.ProtoMinor)
}

// protocols is what the transport may speak for an http.version: by
// default h2 and http/1.1 offered by ALPN over TLS, as Go's default
// transport does, and HTTP/1.1 in cleartext.
func protocols(version string) *http.Protocols {
	var p http.Protocols
	switch version {
	case config.HTTPVersion1:
		p.SetHTTP1(true)
	case config.HTTPVersion2:
		// h2 over TLS; prior-knowledge h2c for http:// URLs.
		p.SetHTTP2(true)
		p.SetUnencryptedHTTP2(true)
	default:
		p.SetHTTP1(true)
		p.SetHTTP2(true)
	}
	return &p
}

// newRequest builds the check's request on a copy of its parsed URL, with
// the headers, basic auth and trace context it sends.
func newRequest(ctx context.Context, t Target) (*http.Request, error) {
	c := t.Check
	var body io.Reader
	if c.HTTP.Body != "" {
		body = strings.NewReader(c.HTTP.Body)
	}
	// An empty URL, replaced below: the check's URL is parsed once, in config.
	req, err := http.NewRequestWithContext(ctx, c.HTTP.Method, "", body)
	if err != nil {
		return nil, failf(ErrOther, "building request: %v", err)
	}
	u := *c.URL
	req.URL = &u
	req.Header.Set("User-Agent", userAgent)
	for k, v := range c.HTTP.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	// basic_auth wins over credentials in the URL's userinfo (net/http
	// sends those itself otherwise).
	if ba := c.HTTP.BasicAuth; ba != nil {
		req.SetBasicAuth(ba.Username, ba.Password)
	}
	if t.Propagator != nil {
		t.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	}
	return req, nil
}

// newHTTPClient builds a client whose transport never reuses a connection
// and dials t.Address (when set) for the URL's own host:port, so redirects
// elsewhere still resolve normally.
func newHTTPClient(ctx context.Context, t Target, tlsCfg *tls.Config) (*http.Client, *http.Transport) {
	var override, to string
	if t.Address.IsValid() {
		override, to = t.Check.Server.String(), t.Address.String()
	}
	deadline, hasDeadline := ctx.Deadline()
	d := netDialer{t.Check.Dial}
	opts := t.Check.HTTP
	// Without proxy_url there is none: a sidecar probes the mesh directly,
	// never through the environment's HTTP_PROXY.
	var proxy func(*http.Request) (*url.URL, error)
	if opts.ProxyURL != nil {
		proxy = http.ProxyURL(opts.ProxyURL.URL())
	}
	transport := &http.Transport{
		Proxy: proxy,
		DialContext: func(dctx context.Context, network, addr string) (net.Conn, error) {
			if override != "" && addr == override {
				addr = to
			}
			// net/http strips the request's deadline from dial contexts.
			if hasDeadline {
				var cancel context.CancelFunc
				dctx, cancel = context.WithDeadline(dctx, deadline)
				defer cancel()
			}
			return d.DialContext(dctx, network, addr)
		},
		TLSClientConfig:        tlsCfg,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: maxHeaderBytes,
		Protocols:              protocols(opts.Version),
	}
	client := &http.Client{
		Transport: transport,
		CheckRedirect: func(_ *http.Request, via []*http.Request) error {
			if opts.NoFollowRedirects {
				return http.ErrUseLastResponse
			}
			if len(via) > opts.MaxRedirects {
				return fmt.Errorf("%w: more than %d", errTooManyRedirects, opts.MaxRedirects)
			}
			return nil
		},
	}
	return client, transport
}

// httpTrace maps net/http's client trace onto the run's phases.
func httpTrace(rec *recorder) *httptrace.ClientTrace {
	tr := rec.dialTrace()
	// A new hop of a redirect chain ends the previous hop's transfer.
	tr.GetConn = func(string) { rec.end(PhaseTransfer) }
	tr.TLSHandshakeStart = func() { rec.start(PhaseTLS) }
	tr.TLSHandshakeDone = func(_ tls.ConnectionState, err error) {
		if err == nil {
			rec.end(PhaseTLS)
		}
	}
	tr.GotConn = func(httptrace.GotConnInfo) { rec.start(PhaseRequest) }
	tr.WroteRequest = func(httptrace.WroteRequestInfo) {
		rec.end(PhaseRequest)
		rec.start(PhaseProcessing)
	}
	tr.GotFirstResponseByte = func() {
		rec.end(PhaseProcessing)
		rec.start(PhaseTransfer)
	}
	return tr
}

// body is what a run read of a response body.
type body struct {
	n    int64  // bytes read: the whole body
	kept []byte // its first bytes, up to the limit readBody was given
}

// truncated reports whether the body was longer than what was kept.
func (b body) truncated() bool { return b.n > int64(len(b.kept)) }

// readBody reads r to the end, keeping its first keep bytes (none when keep
// is 0). sizeHint is the Content-Length (-1 when unknown).
func readBody(r io.Reader, keep, sizeHint int64) (body, error) {
	var b body
	if keep > 0 {
		var err error
		b.kept, err = readPrefix(io.LimitReader(r, keep), keep, sizeHint)
		b.n = int64(len(b.kept))
		if err != nil {
			return b, err
		}
	}
	rest, err := io.Copy(io.Discard, r)
	b.n += rest
	return b, err
}

// readPrefix reads r, which holds at most limit bytes, to its end.
func readPrefix(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	// Fixed chunks joined once at the end: growing one slice would
	// allocate about three times the body.
	chunkSize := 64 << 10
	if sizeHint >= 0 && sizeHint < limit {
		chunkSize = int(sizeHint) + 1 // one chunk; +1 sees the EOF
	}
	var (
		chunks [][]byte
		n      int
	)
	for {
		chunk := make([]byte, min(int64(chunkSize), max(limit-int64(n), 1)))
		m, err := fill(r, chunk)
		n += m
		chunks = append(chunks, chunk[:m])
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	return bytes.Join(chunks, nil), nil
}

// fill reads into buf until it is full or r fails; unlike io.ReadFull it
// keeps a clean io.EOF apart from a truncated body's io.ErrUnexpectedEOF.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func checkStatus(code int, valid []int) error {
	if len(valid) == 0 {
		if code < 200 || code > 299 {
			return failf(ErrStatusCode, "status code %d, want 2xx", code)
		}
		return nil
	}
	if !slices.Contains(valid, code) {
		return failf(ErrStatusCode, "status code %d, want one of %v", code, valid)
	}
	return nil
}

// checkHeaders applies header_matches and header_not_matches; reasons name
// the header and the pattern, never the value (it may be a cookie or token).
func checkHeaders(h http.Header, opts config.HTTPOptions) error {
	for _, m := range opts.HeaderMatches {
		values := h.Values(m.Header)
		if len(values) == 0 {
			return failf(ErrHeaderMismatch, "header %s missing", m.Header)
		}
		if m.Regexp == nil {
			continue
		}
		if !slices.ContainsFunc(values, m.Regexp.MatchString) {
			return failf(ErrHeaderMismatch, "header %s does not match %q", m.Header, m.Regexp.String())
		}
	}
	for _, m := range opts.HeaderNotMatches {
		// An absent header matches nothing, as body_not_matches on an empty body.
		if m.Regexp != nil && slices.ContainsFunc(h.Values(m.Header), m.Regexp.MatchString) {
			return failf(ErrHeaderMismatch, "header %s matches %q", m.Header, m.Regexp.String())
		}
	}
	return nil
}

// checkBody applies the body regexps to the kept part of the body; a
// mismatch says when the body was longer than max_body_bytes.
func checkBody(b body, opts config.HTTPOptions) error {
	for _, re := range opts.BodyMatches {
		if re != nil && !re.Match(b.kept) {
			if b.truncated() {
				return failf(ErrBodyMismatch, "body does not match %q in its first %d bytes (max_body_bytes; the body has %d)",
					re.String(), len(b.kept), b.n)
			}
			return failf(ErrBodyMismatch, "body does not match %q", re.String())
		}
	}
	for _, re := range opts.BodyNotMatches {
		if re != nil && re.Match(b.kept) {
			return failf(ErrBodyMismatch, "body matches %q", re.String())
		}
	}
	return nil
}

// checkSSL applies fail_if_ssl and fail_if_not_ssl to the final response.
func checkSSL(overTLS bool, opts config.HTTPOptions) error {
	switch {
	case overTLS && opts.FailIfSSL:
		return failf(ErrTLS, "response came over TLS (fail_if_ssl)")
	case !overTLS && opts.FailIfNotSSL:
		return failf(ErrTLS, "response came over plain HTTP (fail_if_not_ssl)")
	}
	return nil
}
