package config

import (
	"crypto/tls"
	"fmt"
	"maps"
	"net/url"
	"slices"

	"golang.org/x/net/http/httpguts"
)

// Limits and defaults of the http and tls options in this file.
const (
	DefaultMaxBodyBytes = 10 << 20 // http.max_body_bytes with body regexps
	MaxMaxBodyBytes     = 1 << 30  // largest http.max_body_bytes
)

var (
	httpVersions = []string{HTTPVersion1, HTTPVersion2}
	proxySchemes = []string{"http", "https", "socks5"}
	// tlsVersions maps tls.min_version's spellings to crypto/tls values.
	tlsVersions = map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}
)

// httpTransport reads the http keys about how requests travel and what
// else a response must (not) show.
func (d *yamlDecoder) httpTransport(r *httpYAML, path string, h *HTTPOptions) {
	at := func(key string) string { return joinPath(path, key) }
	h.Version, _ = d.str(r.Version, at("version"))
	if v, ok := d.integer(r.MaxBodyBytes, at("max_body_bytes")); ok {
		h.MaxBodyBytes = int64(v)
	}
	h.HeaderNotMatches = d.headerMatches(&r.HeaderNotMatches, at("header_not_matches"))
	h.FailIfSSL, _ = d.boolean(r.FailIfSSL, at("fail_if_ssl"))
	h.FailIfNotSSL, _ = d.boolean(r.FailIfNotSSL, at("fail_if_not_ssl"))
	field := at("proxy_url")
	if s, ok := d.secret(r.ProxyURL, field); ok {
		// Parsed once here; the message never quotes it (it may hold a password).
		u, err := url.Parse(s)
		if err != nil {
			d.fail(field, ErrInvalidValue, "must be an http://, https:// or socks5:// URL")
		} else {
			h.ProxyURL = (*ProxyURL)(u)
		}
	}
}

// transportProblems validates what httpTransport reads.
func (o *HTTPOptions) transportProblems() []problem {
	var ps []problem
	add := func(field string, format string, args ...any) {
		ps = append(ps, probf(field, ErrInvalidValue, format, args...))
	}
	if o.Version != HTTPVersionAuto && !slices.Contains(httpVersions, o.Version) {
		add("version", "unknown version %q (want %s)", o.Version, orList(httpVersions))
	}
	if len(o.BodyMatches)+len(o.BodyNotMatches) == 0 {
		if o.MaxBodyBytes != 0 {
			add("max_body_bytes", "has no effect without body_matches or body_not_matches (the body is read to the end and not kept)")
		}
	} else if o.MaxBodyBytes < 1 || o.MaxBodyBytes > MaxMaxBodyBytes {
		add("max_body_bytes", "must be between 1 and %d", MaxMaxBodyBytes)
	}
	ps = append(ps, headerMatchProblems("header_not_matches", o.HeaderNotMatches)...)
	if o.FailIfSSL && o.FailIfNotSSL {
		add("fail_if_not_ssl", "conflicts with fail_if_ssl")
	}
	if o.ProxyURL != nil {
		u := o.ProxyURL.URL()
		switch {
		case !slices.Contains(proxySchemes, u.Scheme):
			add("proxy_url", "must be an http://, https:// or socks5:// URL")
		case u.Hostname() == "" || !validHost(u.Hostname()):
			add("proxy_url", "URL has no valid host")
		case u.Port() != "" && !validPort(u.Port()):
			add("proxy_url", "URL port must be a number between 1 and 65535")
		}
	}
	if o.Version == HTTPVersion2 && o.ProxyURL != nil {
		// net/http speaks HTTP/1.1 to a proxy; h2c cannot pass through one.
		add("version", "2 cannot be used with proxy_url")
	}
	return ps
}

// tlsClient reads the tls keys about what the client presents and offers.
func (d *yamlDecoder) tlsClient(r *tlsYAML, path string, t *TLSOptions) {
	at := func(key string) string { return joinPath(path, key) }
	if p, ok := d.str(r.CertFile, at("cert_file")); ok {
		t.CertFile = d.res.path(p)
	}
	if p, ok := d.str(r.KeyFile, at("key_file")); ok {
		t.KeyFile = d.res.path(p)
	}
	if t.CertFile != "" && t.KeyFile != "" {
		// Loaded now: a missing or mismatched pair is a config error, not a
		// failure of every run. Runs load it again, so rotated files count.
		if _, err := LoadClientCert(t.CertFile, t.KeyFile); err != nil {
			d.fail(at("cert_file"), ErrInvalidValue, "%v", err)
		}
	}
	if v, ok := d.str(r.MinVersion, at("min_version")); ok {
		if t.MinVersion, ok = tlsVersions[v]; !ok {
			d.fail(at("min_version"), ErrInvalidValue, "unknown TLS version %q (want 1.0, 1.1, 1.2 or 1.3)", v)
		}
	}
	t.AllowExpired, _ = d.boolean(r.AllowExpired, at("allow_expired"))
}

// ProxyURL is a proxy's URL, which may hold a password: printing it shows "xxxxx" instead.
type ProxyURL url.URL

// URL returns the proxy's URL, password included.
func (p *ProxyURL) URL() *url.URL { return (*url.URL)(p) }

// String shows the URL with its password redacted.
func (p *ProxyURL) String() string { return p.URL().Redacted() }

// GoString hides the password from %#v too.
func (p *ProxyURL) GoString() string { return fmt.Sprintf("config.ProxyURL(%q)", p.String()) }

// MarshalText gives the whole URL, password included, for the check's
// fingerprint (which only hashes it), so a new password counts as a change.
func (p *ProxyURL) MarshalText() ([]byte, error) { return []byte(p.URL().String()), nil }

// LoadClientCert reads a PEM certificate and key pair, within the size limit of every file the config reads.
func LoadClientCert(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := readSmallFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := readSmallFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	// crypto/tls's messages name what is wrong, never the key's bytes.
	return tls.X509KeyPair(certPEM, keyPEM)
}

// clientProblems validates what tlsClient reads.
func (o *TLSOptions) clientProblems() []problem {
	var ps []problem
	switch {
	case o.CertFile != "" && o.KeyFile == "":
		ps = append(ps, probf("key_file", ErrMissingField, "required with cert_file"))
	case o.KeyFile != "" && o.CertFile == "":
		ps = append(ps, probf("cert_file", ErrMissingField, "required with key_file"))
	}
	if o.MinVersion != 0 && !slices.Contains(slices.Collect(maps.Values(tlsVersions)), o.MinVersion) {
		ps = append(ps, probf("min_version", ErrInvalidValue, "unknown TLS version %#04x", o.MinVersion))
	}
	if o.AllowExpired {
		switch {
		case !o.InsecureSkipVerify:
			ps = append(ps, probf("allow_expired", ErrInvalidValue, "only used with insecure_skip_verify: true (verification rejects an expired certificate)"))
		case o.MinDaysLeft > 0:
			ps = append(ps, probf("allow_expired", ErrInvalidValue, "has no effect with min_days_left set (an expired certificate fails it)"))
		}
	}
	return ps
}

// headerMatchProblems checks a list of header regexps named field.
func headerMatchProblems(field string, matches []HeaderMatch) []problem {
	var ps []problem
	for i, m := range matches {
		p := indexPath(field, i)
		if m.Header == "" {
			ps = append(ps, probf(p+".header", ErrMissingField, "required"))
		} else if !httpguts.ValidHeaderFieldName(m.Header) {
			ps = append(ps, probf(p+".header", ErrInvalidValue, "not a valid header name"))
		}
		if m.Regexp == nil {
			ps = append(ps, probf(p+".regexp", ErrMissingField, "required"))
		}
	}
	return ps
}
