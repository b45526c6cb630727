package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTransportOptionErrors pins the text of every error of the http, tls
// and dial options: file, line, field and message.
func TestTransportOptionErrors(t *testing.T) {
	t.Parallel()
	dir := errorFixtures(t)
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), mustRead(t, "testdata/client.pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	const h = "checks:\n  - name: a\n    type: http\n    target: http://example.com/\n"
	const dns = "checks:\n  - name: a\n    type: dns\n    target: example.com\n"
	tests := []struct {
		name, yaml, want string
		kind             error
	}{
		{"version", h + "    http: {version: 3}\n", `t.yaml:5: checks[0].http.version: unknown version "3" (want 1.1 or 2)`, ErrInvalidValue},
		{"version 2.0", h + "    http: {version: 2.0}\n", `t.yaml:5: checks[0].http.version: unknown version "2.0" (want 1.1 or 2)`, ErrInvalidValue},
		{"max_body_bytes alone", h + "    http:\n      max_body_bytes: 100\n",
			"t.yaml:6: checks[0].http.max_body_bytes: has no effect without body_matches or body_not_matches (the body is read to the end and not kept)", ErrInvalidValue},
		{"max_body_bytes zero", h + "    http:\n      body_matches: [x]\n      max_body_bytes: 0\n",
			"t.yaml:7: checks[0].http.max_body_bytes: must be between 1 and 1073741824", ErrInvalidValue},
		{"max_body_bytes text", h + "    http:\n      body_matches: [x]\n      max_body_bytes: 1MiB\n",
			"t.yaml:7: checks[0].http.max_body_bytes: must be a whole number", ErrWrongType},
		{"header_not_matches", h + "    http:\n      header_not_matches:\n        - {header: \"bad header\"}\n",
			"t.yaml:7: checks[0].http.header_not_matches[0].header: not a valid header name\nt.yaml:7: checks[0].http.header_not_matches[0].regexp: required", ErrInvalidValue},
		{"both ssl", h + "    http: {fail_if_ssl: true, fail_if_not_ssl: true}\n", "t.yaml:5: checks[0].http.fail_if_not_ssl: conflicts with fail_if_ssl", ErrInvalidValue},
		{"proxy scheme", h + "    http: {proxy_url: \"ftp://u:pw@proxy:21\"}\n", "t.yaml:5: checks[0].http.proxy_url: must be an http://, https:// or socks5:// URL", ErrInvalidValue},
		{"proxy no host", h + "    http: {proxy_url: \"http://\"}\n", "t.yaml:5: checks[0].http.proxy_url: URL has no valid host", ErrInvalidValue},
		{"proxy with h2", h + "    http: {proxy_url: \"http://proxy:3128\", version: 2}\n", "t.yaml:5: checks[0].http.version: 2 cannot be used with proxy_url", ErrInvalidValue},
		{"proxy with each_address", h + "    each_address: true\n    http: {proxy_url: \"http://proxy:3128\"}\n",
			"t.yaml:5: checks[0].each_address: cannot be used with http.proxy_url: the proxy resolves the target", ErrInvalidValue},
		{"cert without key", h + "    tls: {cert_file: cert.pem}\n", "t.yaml:5: checks[0].tls.key_file: required with cert_file", ErrMissingField},
		{"key without cert", h + "    tls: {key_file: cert.pem}\n", "t.yaml:5: checks[0].tls.cert_file: required with key_file", ErrMissingField},
		{"key not a key", h + "    tls:\n      cert_file: cert.pem\n      key_file: notpem.txt\n",
			"t.yaml:6: checks[0].tls.cert_file: tls: failed to find any PEM data in key input", ErrInvalidValue},
		{"cert missing", h + "    tls:\n      cert_file: nope.pem\n      key_file: notpem.txt\n",
			`t.yaml:6: checks[0].tls.cert_file: cannot read "$DIR/nope.pem": no such file or directory`, ErrInvalidValue},
		{"min_version", h + "    tls: {min_version: 1.4}\n", `t.yaml:5: checks[0].tls.min_version: unknown TLS version "1.4" (want 1.0, 1.1, 1.2 or 1.3)`, ErrInvalidValue},
		{"allow_expired verified", h + "    tls: {allow_expired: true}\n",
			"t.yaml:5: checks[0].tls.allow_expired: only used with insecure_skip_verify: true (verification rejects an expired certificate)", ErrInvalidValue},
		{"allow_expired min days", h + "    tls: {insecure_skip_verify: true, allow_expired: true, min_days_left: 3}\n",
			"t.yaml:5: checks[0].tls.allow_expired: has no effect with min_days_left set (an expired certificate fails it)", ErrInvalidValue},
		{"ip_protocol", h + "    ip_protocol: ipv6\n", `t.yaml:5: checks[0].ip_protocol: unknown ip_protocol "ipv6" (want ip4 or ip6)`, ErrInvalidValue},
		{"fallback alone", h + "    ip_protocol_fallback: false\n", "t.yaml:5: checks[0].ip_protocol_fallback: only used with ip_protocol", ErrInvalidValue},
		{"source not IP", h + "    source_address: eth0\n", `t.yaml:5: checks[0].source_address: "eth0" is not an IP address`, ErrInvalidValue},
		{"source family", h + "    ip_protocol: ip6\n    source_address: 127.0.0.2\n", "t.yaml:6: checks[0].source_address: 127.0.0.2 is not an address of ip_protocol ip6", ErrInvalidValue},
		{"dns dial options", dns + "    ip_protocol: ip4\n    source_address: 127.0.0.2\n",
			"t.yaml:5: checks[0].ip_protocol: not supported by dns checks\nt.yaml:6: checks[0].source_address: not supported by dns checks", ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := strings.ReplaceAll(tt.want, "$DIR", dir)
			_, err := parse(filepath.Join(dir, "t.yaml"), []byte(tt.yaml), lookupTestEnv)
			got := strings.ReplaceAll(errString(err), filepath.Join(dir, "t.yaml"), "t.yaml")
			if got != want {
				t.Errorf("error:\n got: %s\nwant: %s", got, want)
			}
			if err != nil && !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false", tt.kind)
			}
			if strings.Contains(got, "pw@") {
				t.Errorf("error quotes the proxy password: %s", got)
			}
		})
	}
}

// TestTransportOptionsDecoded checks the typed values the new options decode to.
func TestTransportOptionsDecoded(t *testing.T) {
	t.Parallel()
	dir := errorFixtures(t)
	for _, name := range []string{"client.pem", "client-key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, name), mustRead(t, "testdata/"+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := parse(filepath.Join(dir, "t.yaml"), []byte(`checks:
  - name: a
    type: tcp
    target: "localhost:1"
    ip_protocol: IP4
    ip_protocol_fallback: false
    source_address: "::ffff:127.0.0.2"
    tcp: {tls: true}
    tls: {cert_file: client.pem, key_file: client-key.pem, min_version: 1.2, insecure_skip_verify: true, allow_expired: true}
  - name: b
    type: http
    target: "http://localhost/"
    http: {body_not_matches: [x], version: 1.1, proxy_url: "socks5://${env:HB_TOKEN}@127.0.0.1:1080"}
`), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.Checks[0], f.Checks[1]
	if want := (DialOptions{IPProtocol: "ip4", NoIPProtocolFallback: true, SourceAddress: netip.MustParseAddr("127.0.0.2")}); a.Dial != want {
		t.Errorf("dial options %+v, want %+v", a.Dial, want)
	}
	if a.TLS.MinVersion != tls.VersionTLS12 || a.TLS.CertFile != filepath.Join(dir, "client.pem") || !a.TLS.AllowExpired {
		t.Errorf("tls options %+v", a.TLS)
	}
	if b.HTTP.MaxBodyBytes != DefaultMaxBodyBytes || b.HTTP.Version != HTTPVersion1 {
		t.Errorf("max_body_bytes %d version %q: want the default and 1.1", b.HTTP.MaxBodyBytes, b.HTTP.Version)
	}
	if u := b.HTTP.ProxyURL.URL(); b.HTTP.ProxyURL == nil || u.User.Username() != testEnv["HB_TOKEN"] || u.Host != "127.0.0.1:1080" {
		t.Errorf("proxy URL %v", u)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDialSelect(t *testing.T) {
	t.Parallel()
	addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("10.0.0.2")}
	only4 := addrs[:1]
	tests := []struct {
		opts DialOptions
		in   []netip.Addr
		want string
	}{
		{DialOptions{}, addrs, "[10.0.0.1 2001:db8::1 10.0.0.2]"},
		{DialOptions{IPProtocol: "ip4"}, addrs, "[10.0.0.1 10.0.0.2]"},
		{DialOptions{IPProtocol: "ip6"}, addrs, "[2001:db8::1]"},
		{DialOptions{IPProtocol: "ip6"}, only4, "[10.0.0.1]"},
		{DialOptions{IPProtocol: "ip6", NoIPProtocolFallback: true}, only4, "[]"},
		{DialOptions{SourceAddress: netip.MustParseAddr("2001:db8::9")}, addrs, "[2001:db8::1]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(tt.opts.Select(tt.in)); got != tt.want {
			t.Errorf("%+v.Select(%v) = %s, want %s", tt.opts, tt.in, got, tt.want)
		}
	}
}
