package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// testEnv is the environment the table tests see; parse takes it as a
// lookup function so the tests need no t.Setenv and can run in parallel.
var testEnv = map[string]string{
	"HB_TOKEN":   "s3cr3t-token",
	"HB_NEWLINE": "line1\nline2",
}

func lookupTestEnv(k string) (string, bool) {
	v, ok := testEnv[k]
	return v, ok
}

// errorFixtures writes the files the error cases refer to as $DIR/...
func errorFixtures(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "notpem.txt"), []byte("hello\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "pw"), []byte("hunter2\n"), 0o600))
	pem, err := os.ReadFile("testdata/ca.pem")
	must(err)
	must(os.WriteFile(filepath.Join(dir, "ca.pem"), pem, 0o600))
	must(os.Mkdir(filepath.Join(dir, "subdir"), 0o700))
	return dir
}

// TestYAMLErrors pins the exact text of every kind of YAML config error.
func TestYAMLErrors(t *testing.T) {
	t.Parallel()
	dir := errorFixtures(t)
	const h = "checks:\n  - name: a\n    type: http\n    target: http://example.com/\n"
	const tcp = "checks:\n  - name: a\n    type: tcp\n    target: example.com:22\n"
	const dns = "checks:\n  - name: a\n    type: dns\n    target: example.com\n"
	tests := []struct {
		name string
		yaml string
		want string // exact Error(); several lines when several problems
		kind error
	}{
		// File level.
		{"empty file", "", `t.yaml: empty file (want a "checks" list)`, ErrMissingField},
		{"only comments", "# nothing\n\n", `t.yaml: empty file (want a "checks" list)`, ErrMissingField},
		{"syntax", "checks: [\n", "t.yaml:1: invalid YAML: sequence end token ']' not found", ErrSyntax},
		{"bad indentation", "checks:\n  - name: a\n   type: http\n", "t.yaml:3: invalid YAML: value is not allowed in this context", ErrSyntax},
		{"duplicate key", "checks: []\nchecks: []\n", `t.yaml:2: invalid YAML: mapping key "checks" already defined at [1:1]`, ErrSyntax},
		{"two documents", "checks: []\n---\nchecks: []\n", "t.yaml:3: more than one YAML document", ErrSyntax},
		{"scalar top level", "hello world\n", `t.yaml:1: must be a mapping with a "checks" list`, ErrWrongType},
		{"list top level", "- a\n", `t.yaml:1: must be a mapping with a "checks" list`, ErrWrongType},
		{"missing checks", "defaults: {interval: 10s}\n", "t.yaml:1: checks: required (use [] for none)", ErrMissingField},
		{"null checks", "checks:\n", "t.yaml:1: checks: required (use [] for none)", ErrMissingField},
		{"checks not a list", "checks: {a: 1}\n", "t.yaml:1: checks: must be a list", ErrWrongType},
		{"unknown top key", "checks: []\ncheck: []\n", `t.yaml:2: check: unknown field (did you mean "checks"?)`, ErrUnknownField},
		{"unknown top key far", "checks: []\nzzzzzzzz: 1\n", "t.yaml:2: zzzzzzzz: unknown field", ErrUnknownField},
		{"check not a mapping", "checks:\n  - just-a-string\n", "t.yaml:2: checks[0]: must be a mapping", ErrWrongType},
		{"null check", "checks:\n  -\n", "t.yaml:2: checks[0]: must be a mapping", ErrWrongType},

		// Defaults.
		{"defaults unknown", "defaults: {intervl: 10s}\nchecks: []\n", `t.yaml:1: defaults.intervl: unknown field (did you mean "interval"?)`, ErrUnknownField},
		{"defaults not mapping", "defaults: 5\nchecks: []\n", "t.yaml:1: defaults: must be a mapping", ErrWrongType},
		{"defaults timeout", "defaults:\n  timeout: 40s\nchecks: []\n", "t.yaml:2: defaults.timeout: must be less than interval (30s)", ErrInvalidValue},
		{"defaults interval", "defaults:\n  interval: 100ms\nchecks: []\n", "t.yaml:2: defaults.interval: must be at least 1s", ErrInvalidValue},
		{"defaults jitter", "defaults:\n  jitter: 0.7\nchecks: []\n", "t.yaml:2: defaults.jitter: must be between 0 and 0.5", ErrInvalidValue},
		{"defaults threshold", "defaults:\n  failure_threshold: 0\nchecks: []\n", "t.yaml:2: defaults.failure_threshold: must be at least 1", ErrInvalidValue},
		{"defaults timeout zero", "defaults:\n  timeout: 0s\nchecks: []\n", "t.yaml:2: defaults.timeout: must be greater than 0", ErrInvalidValue},

		// Check fields: presence and types.
		{"missing name", "checks:\n  - type: tcp\n    target: h:1\n", "t.yaml:2: checks[0].name: required", ErrMissingField},
		{"missing type", "checks:\n  - name: a\n    target: h:1\n", "t.yaml:2: checks[0].type: required (one of http, tcp, tls, dns, grpc, icmp, mtu, throughput)", ErrMissingField},
		{"missing target", "checks:\n  - name: a\n    type: tcp\n", "t.yaml:2: checks[0].target: required", ErrMissingField},
		{"unknown check key", tcp + "    intervall: 10s\n", `t.yaml:5: checks[0].intervall: unknown field (did you mean "interval"?)`, ErrUnknownField},
		{"name is a list", "checks:\n  - name: [a]\n    type: tcp\n    target: h:1\n", "t.yaml:2: checks[0].name: must be a string", ErrWrongType},
		{"name control char", "checks:\n  - name: \"a\\tb\"\n    type: tcp\n    target: h:1\n", "t.yaml:2: checks[0].name: must be printable UTF-8 text (no control characters)", ErrInvalidValue},
		{"unknown type", "checks:\n  - name: a\n    type: htp\n    target: h:1\n", `t.yaml:3: checks[0].type: unknown type "htp" (want http, tcp, tls, dns, grpc, icmp, mtu or throughput)`, ErrInvalidValue},
		{"bool as string", tcp + "    each_address: \"yes\"\n", "t.yaml:5: checks[0].each_address: must be true or false", ErrWrongType},
		{"int as float", tcp + "    failure_threshold: 1.5\n", "t.yaml:5: checks[0].failure_threshold: must be a whole number", ErrWrongType},
		{"int as string", tcp + "    success_threshold: two\n", "t.yaml:5: checks[0].success_threshold: must be a whole number", ErrWrongType},
		{"jitter as string", tcp + "    jitter: lots\n", "t.yaml:5: checks[0].jitter: must be a number", ErrWrongType},
		{"duration without unit", tcp + "    interval: 30\n", "t.yaml:5: checks[0].interval: must be a duration with a unit, such as 30s (got 30)", ErrWrongType},
		{"bad duration", tcp + "    interval: 30 seconds\n", `t.yaml:5: checks[0].interval: must be a duration such as 30s or 1m30s (got "30 seconds")`, ErrInvalidValue},
		{"duration as list", tcp + "    timeout: [1s]\n", "t.yaml:5: checks[0].timeout: must be a duration such as 30s or 1m30s", ErrWrongType},
		{"duplicate names", h + "  - name: a\n    type: tcp\n    target: h:1\n", `t.yaml:5: checks[1].name: duplicate name "a" (first at line 2)`, ErrDuplicate},

		// Impossible values.
		{"interval too short", tcp + "    interval: 500ms\n", "t.yaml:5: checks[0].interval: must be at least 1s", ErrInvalidValue},
		{"timeout equals interval", tcp + "    interval: 10s\n    timeout: 10s\n", "t.yaml:6: checks[0].timeout: must be less than interval (10s)", ErrInvalidValue},
		{"timeout above interval", tcp + "    timeout: 1m\n", "t.yaml:5: checks[0].timeout: must be less than interval (30s)", ErrInvalidValue},
		{"timeout zero", tcp + "    timeout: 0s\n", "t.yaml:5: checks[0].timeout: must be greater than 0", ErrInvalidValue},
		{"negative timeout", tcp + "    timeout: -1s\n", "t.yaml:5: checks[0].timeout: must be greater than 0", ErrInvalidValue},
		{"jitter too big", tcp + "    jitter: 0.51\n", "t.yaml:5: checks[0].jitter: must be between 0 and 0.5", ErrInvalidValue},
		{"jitter negative", tcp + "    jitter: -0.1\n", "t.yaml:5: checks[0].jitter: must be between 0 and 0.5", ErrInvalidValue},
		{"failure threshold 0", tcp + "    failure_threshold: 0\n", "t.yaml:5: checks[0].failure_threshold: must be at least 1", ErrInvalidValue},
		{"success threshold 0", tcp + "    success_threshold: 0\n", "t.yaml:5: checks[0].success_threshold: must be at least 1", ErrInvalidValue},

		// Targets.
		{"http target no scheme", "checks:\n  - name: a\n    type: http\n    target: example.com\n", "t.yaml:4: checks[0].target: must be an http:// or https:// URL", ErrInvalidValue},
		{"http target ftp", "checks:\n  - name: a\n    type: http\n    target: ftp://example.com/\n", `t.yaml:4: checks[0].target: scheme "ftp" not supported (want http or https)`, ErrInvalidValue},
		{"http target no host", "checks:\n  - name: a\n    type: http\n    target: http:///path\n", "t.yaml:4: checks[0].target: URL has no host", ErrInvalidValue},
		{"http target bad port", "checks:\n  - name: a\n    type: http\n    target: http://h:99999/\n", "t.yaml:4: checks[0].target: URL port must be a number between 1 and 65535", ErrInvalidValue},
		{"http target space", "checks:\n  - name: a\n    type: http\n    target: \"http://h/a b\"\n", "t.yaml:4: checks[0].target: must not contain spaces or control characters", ErrInvalidValue},
		{"http target bad host", "checks:\n  - name: a\n    type: http\n    target: http://bad..host/\n", "t.yaml:4: checks[0].target: URL has an invalid host name", ErrInvalidValue},
		{"tcp target no port", "checks:\n  - name: a\n    type: tcp\n    target: example.com\n", "t.yaml:4: checks[0].target: must be host:port (e.g. 10.0.0.1:22 or db.example.com:5432)", ErrInvalidValue},
		{"tls target url", "checks:\n  - name: a\n    type: tls\n    target: https://example.com/\n", "t.yaml:4: checks[0].target: must be host:port, not a URL", ErrInvalidValue},
		{"grpc target port 0", "checks:\n  - name: a\n    type: grpc\n    target: h:0\n", "t.yaml:4: checks[0].target: port must be a number between 1 and 65535", ErrInvalidValue},
		{"tcp target named port", "checks:\n  - name: a\n    type: tcp\n    target: h:ssh\n", "t.yaml:4: checks[0].target: port must be a number between 1 and 65535", ErrInvalidValue},
		{"tcp target no host", "checks:\n  - name: a\n    type: tcp\n    target: \":22\"\n", "t.yaml:4: checks[0].target: host:port has no host", ErrInvalidValue},
		{"dns target ip", "checks:\n  - name: a\n    type: dns\n    target: 1.2.3.4\n", "t.yaml:4: checks[0].target: must be a DNS name, not an IP address", ErrInvalidValue},
		{"dns target url", "checks:\n  - name: a\n    type: dns\n    target: http://example.com/\n", "t.yaml:4: checks[0].target: must be a DNS name (e.g. example.com)", ErrInvalidValue},

		// each_address and max_addresses.
		{"each_address dns", dns + "    each_address: true\n", "t.yaml:5: checks[0].each_address: not supported by dns checks", ErrInvalidValue},
		{"each_address ip", "checks:\n  - name: a\n    type: http\n    target: http://10.0.0.1/\n    each_address: true\n", "t.yaml:5: checks[0].each_address: target host is already an IP address", ErrInvalidValue},
		{"max_addresses alone", tcp + "    max_addresses: 5\n", "t.yaml:5: checks[0].max_addresses: only used with each_address: true", ErrInvalidValue},
		{"max_addresses range", tcp + "    each_address: true\n    max_addresses: 5000\n", "t.yaml:6: checks[0].max_addresses: must be between 1 and 1000", ErrInvalidValue},

		// Options blocks in the wrong place.
		{"http block on tcp", tcp + "    http: {method: GET}\n", "t.yaml:5: checks[0].http: only used by http checks", ErrInvalidValue},
		{"tcp block on http", h + "    tcp: {send: x}\n", "t.yaml:5: checks[0].tcp: only used by tcp checks", ErrInvalidValue},
		{"dns block on tcp", tcp + "    dns: {record_type: A}\n", "t.yaml:5: checks[0].dns: only used by dns checks", ErrInvalidValue},
		{"grpc block on dns", dns + "    grpc: {service: x}\n", "t.yaml:5: checks[0].grpc: only used by grpc checks", ErrInvalidValue},
		{"tls block on dns", dns + "    tls: {min_days_left: 3}\n", "t.yaml:5: checks[0].tls: only used by tls and http checks, by tcp and grpc checks with tls: true, and by tcp checks with a starttls step", ErrInvalidValue},
		{"tls block on plain tcp", tcp + "    tls: {min_days_left: 3}\n", "t.yaml:5: checks[0].tls: only used by tls and http checks, by tcp and grpc checks with tls: true, and by tcp checks with a starttls step", ErrInvalidValue},
		{"http block not mapping", h + "    http: GET\n", "t.yaml:5: checks[0].http: must be a mapping", ErrWrongType},
		{"unknown http key", h + "    http:\n      methd: GET\n", `t.yaml:6: checks[0].http.methd: unknown field (did you mean "method"?)`, ErrUnknownField},

		// http options.
		{"method", h + "    http: {method: FETCH}\n", `t.yaml:5: checks[0].http.method: unknown method "FETCH" (want GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or TRACE)`, ErrInvalidValue},
		{"status codes", h + "    http:\n      valid_status_codes: [200, 99, 600]\n", "t.yaml:6: checks[0].http.valid_status_codes[1]: must be between 100 and 599\nt.yaml:6: checks[0].http.valid_status_codes[2]: must be between 100 and 599", ErrInvalidValue},
		{"status code type", h + "    http:\n      valid_status_codes:\n        - 200\n        - OK\n", "t.yaml:8: checks[0].http.valid_status_codes[1]: must be a whole number", ErrWrongType},
		{"status codes not list", h + "    http: {valid_status_codes: 200}\n", "t.yaml:5: checks[0].http.valid_status_codes: must be a list", ErrWrongType},
		{"bad body regexp", h + "    http:\n      body_matches:\n        - ok\n        - \"(\"\n", "t.yaml:8: checks[0].http.body_matches[1]: invalid regular expression: missing closing ): `(`", ErrInvalidValue},
		{"bad body_not regexp", h + "    http: {body_not_matches: [\"a**\"]}\n", "t.yaml:5: checks[0].http.body_not_matches[0]: invalid regular expression: invalid nested repetition operator: `**`", ErrInvalidValue},
		{"header match no regexp", h + "    http:\n      header_matches:\n        - header: Content-Type\n", "t.yaml:7: checks[0].http.header_matches[0].regexp: required", ErrMissingField},
		{"header match not mapping", h + "    http:\n      header_matches: [Content-Type]\n", "t.yaml:6: checks[0].http.header_matches[0]: must be a mapping with header and regexp", ErrWrongType},
		{"header match bad regexp", h + "    http:\n      header_matches:\n        - {header: X, regexp: \"[\"}\n", "t.yaml:7: checks[0].http.header_matches[0].regexp: invalid regular expression: missing closing ]: `[`", ErrInvalidValue},
		{"max_redirects without follow", h + "    http:\n      follow_redirects: false\n      max_redirects: 3\n", "t.yaml:7: checks[0].http.max_redirects: has no effect when follow_redirects is false", ErrInvalidValue},
		{"max_redirects range", h + "    http: {max_redirects: 0}\n", "t.yaml:5: checks[0].http.max_redirects: must be between 1 and 100", ErrInvalidValue},
		{"follow_redirects type", h + "    http: {follow_redirects: 1}\n", "t.yaml:5: checks[0].http.follow_redirects: must be true or false", ErrWrongType},
		{"header name", h + "    http:\n      headers:\n        \"Bad Header\": x\n", `t.yaml:7: checks[0].http.headers["Bad Header"]: not a valid header name`, ErrInvalidValue},
		{"header value newline", h + "    http:\n      headers:\n        X-Token: ${env:HB_NEWLINE}\n", "t.yaml:7: checks[0].http.headers.X-Token: value contains a character not allowed in a header (e.g. a newline)", ErrInvalidValue},
		{"headers not mapping", h + "    http: {headers: [a]}\n", "t.yaml:5: checks[0].http.headers: must be a mapping", ErrWrongType},
		{"header twice", h + "    http:\n      headers:\n        x-a: 1\n        X-A: 2\n", "t.yaml:8: checks[0].http.headers.X-A: same header as line 7", ErrDuplicate},
		{"basic auth no user", h + "    http:\n      basic_auth: {password: p}\n", "t.yaml:6: checks[0].http.basic_auth.username: required", ErrMissingField},
		{"basic auth colon", h + "    http:\n      basic_auth: {username: \"a:b\", password: p}\n", "t.yaml:6: checks[0].http.basic_auth.username: must not contain a colon or a newline", ErrInvalidValue},
		{"basic auth both", h + "    http:\n      basic_auth:\n        username: u\n        password: p\n        password_file: $DIR/pw\n", "t.yaml:9: checks[0].http.basic_auth.password_file: set either password or password_file, not both", ErrInvalidValue},
		{"basic auth and authorization", h + "    http:\n      headers: {Authorization: Bearer x}\n      basic_auth: {username: u, password: p}\n", "t.yaml:7: checks[0].http.basic_auth: conflicts with the Authorization header", ErrInvalidValue},
		{"password_file missing", h + "    http:\n      basic_auth:\n        username: u\n        password_file: $DIR/nope\n", `t.yaml:8: checks[0].http.basic_auth.password_file: cannot read "$DIR/nope": no such file or directory`, ErrSecret},
		{"password_file dir", h + "    http:\n      basic_auth:\n        username: u\n        password_file: $DIR/subdir\n", `t.yaml:8: checks[0].http.basic_auth.password_file: cannot read "$DIR/subdir": not a regular file`, ErrSecret},

		// Secret references.
		{"env missing", h + "    http:\n      headers:\n        X-Token: \"Bearer ${env:HB_NOPE}\"\n", "t.yaml:7: checks[0].http.headers.X-Token: environment variable HB_NOPE is not set", ErrSecret},
		{"file missing", h + "    http:\n      body: \"${file:/nonexistent/heartbeat}\"\n", `t.yaml:6: checks[0].http.body: cannot read "/nonexistent/heartbeat": no such file or directory`, ErrSecret},
		{"device file", h + "    http:\n      body: \"${file:/dev/zero}\"\n", `t.yaml:6: checks[0].http.body: cannot read "/dev/zero": not a regular file`, ErrSecret},
		{"unterminated ref", h + "    http:\n      basic_auth: {username: u, password: \"${env:HB_TOKEN\"}\n", "t.yaml:6: checks[0].http.basic_auth.password: ${env:...} reference has no closing }", ErrSecret},
		{"empty env name", tcp + "    tcp: {send: \"${env:}\"}\n", "t.yaml:5: checks[0].tcp.send: ${env:} needs a variable name", ErrSecret},
		{"empty file name", tcp + "    tcp: {send: \"${file:}\"}\n", "t.yaml:5: checks[0].tcp.send: ${file:} needs a path", ErrSecret},

		// tcp, tls, dns, grpc options.
		{"tcp expect regexp", tcp + "    tcp:\n      expect: \"+\"\n", "t.yaml:6: checks[0].tcp.expect: invalid regular expression: missing argument to repetition operator: `+`", ErrInvalidValue},
		{"tcp unknown key", tcp + "    tcp: {expects: x}\n", `t.yaml:5: checks[0].tcp.expects: unknown field (did you mean "expect"?)`, ErrUnknownField},
		{"ca_file missing", h + "    tls: {ca_file: $DIR/missing.pem}\n", `t.yaml:5: checks[0].tls.ca_file: cannot read "$DIR/missing.pem": no such file or directory`, ErrInvalidValue},
		{"ca_file not pem", h + "    tls: {ca_file: $DIR/notpem.txt}\n", `t.yaml:5: checks[0].tls.ca_file: no PEM certificate in "$DIR/notpem.txt"`, ErrInvalidValue},
		{"ca_file and skip verify", h + "    tls:\n      insecure_skip_verify: true\n      ca_file: $DIR/ca.pem\n", "t.yaml:7: checks[0].tls.ca_file: has no effect with insecure_skip_verify: true", ErrInvalidValue},
		{"min_days_left", h + "    tls:\n      min_days_left: -1\n", "t.yaml:6: checks[0].tls.min_days_left: must be between 0 and 3650", ErrInvalidValue},
		{"server_name", "checks:\n  - name: a\n    type: tls\n    target: h:443\n    tls: {server_name: \"bad name\"}\n", "t.yaml:5: checks[0].tls.server_name: not a valid host name", ErrInvalidValue},
		{"dns record type", dns + "    dns: {record_type: PTR}\n", `t.yaml:5: checks[0].dns.record_type: unknown record type "PTR" (want A, AAAA, CNAME, MX, TXT, NS or SRV)`, ErrInvalidValue},
		{"dns answer A", dns + "    dns:\n      expected_answers: [\"::1\"]\n", `t.yaml:6: checks[0].dns.expected_answers[0]: "::1" is not an IPv4 address (record_type is A)`, ErrInvalidValue},
		{"dns answer AAAA", dns + "    dns:\n      record_type: AAAA\n      expected_answers:\n        - 10.0.0.1\n", `t.yaml:8: checks[0].dns.expected_answers[0]: "10.0.0.1" is not an IPv6 address (record_type is AAAA)`, ErrInvalidValue},
		{"dns server", dns + "    dns: {server: \"h:99999\"}\n", `t.yaml:5: checks[0].dns.server: port must be a number between 1 and 65535 (got "h:99999")`, ErrInvalidValue},
		{"dns server bad host", dns + "    dns: {server: \"bad host\"}\n", `t.yaml:5: checks[0].dns.server: not a valid host name or IP address (got "bad host")`, ErrInvalidValue},
		{"dns server url", dns + "    dns: {server: \"udp://10.0.0.1\"}\n", `t.yaml:5: checks[0].dns.server: must be host:port, not a URL (got "udp://10.0.0.1")`, ErrInvalidValue},
		{"dns transport", dns + "    dns: {transport: quic}\n", `t.yaml:5: checks[0].dns.transport: unknown transport "quic" (want udp or tcp)`, ErrInvalidValue},
		{"dns rcode", dns + "    dns:\n      valid_rcodes: [NOERROR, NXDOMIAN]\n", `t.yaml:6: checks[0].dns.valid_rcodes[1]: unknown response code "NXDOMIAN" (want NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED, YXDOMAIN, YXRRSET, NXRRSET, NOTAUTH or NOTZONE)`, ErrInvalidValue},
		{"dns rcodes empty", dns + "    dns: {valid_rcodes: []}\n", "t.yaml:5: checks[0].dns.valid_rcodes: must list at least one response code (e.g. NOERROR)", ErrInvalidValue},
		{"dns rcodes not list", dns + "    dns: {valid_rcodes: NXDOMAIN}\n", "t.yaml:5: checks[0].dns.valid_rcodes: must be a list", ErrWrongType},
		{"dns fail_if_no_answer type", dns + "    dns: {fail_if_no_answer: \"yes\"}\n", "t.yaml:5: checks[0].dns.fail_if_no_answer: must be true or false", ErrWrongType},
		{"query_response and send", tcp + "    tcp:\n      send: x\n      query_response:\n        - expect: y\n", "t.yaml:8: checks[0].tcp.query_response: set either send and expect or query_response, not both", ErrInvalidValue},
		{"query_response empty step", tcp + "    tcp:\n      query_response:\n        - expect: a\n        - {}\n", "t.yaml:8: checks[0].tcp.query_response[1]: needs expect, send or starttls", ErrMissingField},
		{"query_response step not mapping", tcp + "    tcp:\n      query_response: [PING]\n", "t.yaml:6: checks[0].tcp.query_response[0]: must be a mapping with expect, send or starttls", ErrWrongType},
		{"query_response unknown key", tcp + "    tcp:\n      query_response:\n        - {expect: a, start_tls: true}\n", `t.yaml:7: checks[0].tcp.query_response[0].start_tls: unknown field (did you mean "starttls"?)`, ErrUnknownField},
		{"query_response bad regexp", tcp + "    tcp:\n      query_response:\n        - expect: \"(\"\n", "t.yaml:7: checks[0].tcp.query_response[0].expect: invalid regular expression: missing closing ): `(`", ErrInvalidValue},
		{"starttls on tls", tcp + "    tcp:\n      tls: true\n      query_response:\n        - starttls: true\n", "t.yaml:8: checks[0].tcp.query_response[0].starttls: the connection is already TLS (tcp.tls: true)", ErrInvalidValue},
		{"starttls twice", tcp + "    tcp:\n      query_response:\n        - starttls: true\n        - send: x\n        - starttls: true\n", "t.yaml:9: checks[0].tcp.query_response[2].starttls: TLS already started at query_response[0]", ErrInvalidValue},
		{"starttls type", tcp + "    tcp:\n      query_response:\n        - starttls: 1\n", "t.yaml:7: checks[0].tcp.query_response[0].starttls: must be true or false", ErrWrongType},
		{"interval zero", tcp + "    interval: 0s\n", "t.yaml:5: checks[0].interval: must be at least 1s", ErrInvalidValue},
		{"interval zero timeout zero", tcp + "    interval: 0s\n    timeout: 0s\n", "t.yaml:5: checks[0].interval: must be at least 1s\nt.yaml:6: checks[0].timeout: must be greater than 0", ErrInvalidValue},
		{"grpc tls type", "checks:\n  - name: a\n    type: grpc\n    target: h:1\n    grpc: {tls: \"no\"}\n", "t.yaml:5: checks[0].grpc.tls: must be true or false", ErrWrongType},

		// Aliases.
		{"unknown alias", "checks:\n  - name: *nope\n    type: tcp\n    target: h:1\n", "t.yaml:2: checks[0].name: unknown alias *nope", ErrSyntax},
		{"merge non-mapping", "x: &x [1]\nchecks:\n  - <<: *x\n    name: a\n    type: tcp\n    target: h:1\n", "t.yaml:1: x: unknown field\nt.yaml:3: checks[0]: << must merge mappings", ErrUnknownField},
		{"merge list", "x-base: &x [1]\nchecks:\n  - <<: *x\n    name: a\n    type: tcp\n    target: h:1\n", "t.yaml:3: checks[0]: << must merge mappings", ErrWrongType},

		// Several problems: all reported, in line order.
		{"several", "checks:\n  - name: a\n    type: tcp\n    target: nohost\n    interval: 10s\n    timeout: 20s\n  - name: a\n    type: dns\n    target: example.com\n", "t.yaml:4: checks[0].target: must be host:port (e.g. 10.0.0.1:22 or db.example.com:5432)\nt.yaml:6: checks[0].timeout: must be less than interval (10s)\nt.yaml:7: checks[1].name: duplicate name \"a\" (first at line 2)", ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := strings.ReplaceAll(tt.yaml, "$DIR", dir)
			want := strings.ReplaceAll(tt.want, "$DIR", dir)
			f, err := parse("t.yaml", []byte(data), lookupTestEnv)
			if err == nil {
				t.Fatalf("no error; got %d checks", len(f.Checks))
			}
			if f != nil {
				t.Errorf("File returned along with the error")
			}
			if got := err.Error(); got != want {
				t.Errorf("error:\n got: %s\nwant: %s", got, want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false", tt.kind)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("error is not an *Error")
			}
		})
	}
}

// TestTooManyErrors checks the cap on reported problems.
func TestTooManyErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("checks:\n")
	for range 25 {
		b.WriteString("  - {type: tcp, target: h:1}\n")
	}
	_, err := parse("t.yaml", []byte(b.String()), lookupTestEnv)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != maxErrors+1 {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), maxErrors+1, err)
	}
	if lines[0] != "t.yaml:2: checks[0].name: required" {
		t.Errorf("first line %q", lines[0])
	}
	if want := "t.yaml: 5 more errors not shown"; lines[maxErrors] != want {
		t.Errorf("last line %q, want %q", lines[maxErrors], want)
	}
	if !errors.Is(err, ErrMissingField) {
		t.Error("errors.Is(err, ErrMissingField) = false")
	}
}

// TestLegacyErrors pins the exact text of every legacy-format error.
func TestLegacyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		json string
		want string
		kind error
	}{
		{"malformed", "{\n  \"HeartbeatIntervalSeconds\": 30,\n  \"Urls\": [\"http://a/\"\n  \"TcpEndpoints\": []\n}\n", `h.config:4: invalid JSON: invalid character '"' after array value (expecting ',' or ']') (column 3)`, ErrSyntax},
		{"truncated", "{\"HeartbeatIntervalSeconds\": 30,", "h.config:1: invalid JSON: parsing value: unexpected EOF (column 33)", ErrSyntax},
		{"missing interval", `{"Urls": [], "TcpEndpoints": []}`, "h.config:1: HeartbeatIntervalSeconds: required", ErrMissingField},
		{"missing urls", "{\n \"HeartbeatIntervalSeconds\": 30,\n \"TcpEndpoints\": []\n}", "h.config:1: Urls: required (use [] for none)", ErrMissingField},
		{"missing endpoints", "{\n \"HeartbeatIntervalSeconds\": 30,\n \"Urls\": []\n}", "h.config:1: TcpEndpoints: required (use [] for none)", ErrMissingField},
		{"empty object", "{}", "h.config:1: HeartbeatIntervalSeconds: required\nh.config:1: TcpEndpoints: required (use [] for none)\nh.config:1: Urls: required (use [] for none)", ErrMissingField},
		{"null urls", `{"HeartbeatIntervalSeconds": 30, "Urls": null, "TcpEndpoints": []}`, "h.config:1: Urls: must be a list of strings (use [] for none)", ErrWrongType},
		{"unknown key", "{\n \"HeartbeatIntervalSeconds\": 30,\n \"Urls\": [],\n \"TcpEndpoints\": [],\n \"TimeoutSecond\": 5\n}", `h.config:5: TimeoutSecond: unknown field (did you mean "TimeoutSeconds"?)`, ErrUnknownField},
		{"duplicate key", "{\n \"HeartbeatIntervalSeconds\": 30,\n \"urls\": [],\n \"Urls\": [],\n \"TcpEndpoints\": []\n}", "h.config:4: Urls: duplicate key (first at line 3)", ErrDuplicate},
		{"interval string", `{"HeartbeatIntervalSeconds": "30", "Urls": [], "TcpEndpoints": []}`, "h.config:1: HeartbeatIntervalSeconds: must be a whole number of seconds", ErrWrongType},
		{"interval fraction", `{"HeartbeatIntervalSeconds": 1.5, "Urls": [], "TcpEndpoints": []}`, "h.config:1: HeartbeatIntervalSeconds: must be a whole number of seconds", ErrWrongType},
		{"interval zero", `{"HeartbeatIntervalSeconds": 0, "Urls": [], "TcpEndpoints": []}`, "h.config:1: HeartbeatIntervalSeconds: must be between 1 and 31536000", ErrInvalidValue},
		{"timeout equals interval", "{\"HeartbeatIntervalSeconds\": 5,\n\"Urls\": [], \"TcpEndpoints\": [],\n\"TimeoutSeconds\": 5}", "h.config:3: TimeoutSeconds: must be less than HeartbeatIntervalSeconds (5)", ErrInvalidValue},
		{"timeout zero", `{"HeartbeatIntervalSeconds": 5, "Urls": [], "TcpEndpoints": [], "TimeoutSeconds": 0}`, "h.config:1: TimeoutSeconds: must be between 1 and 31536000", ErrInvalidValue},
		{"urls not list", `{"HeartbeatIntervalSeconds": 5, "Urls": "http://a/", "TcpEndpoints": []}`, "h.config:1: Urls: must be a list of strings (use [] for none)", ErrWrongType},
		{"url not string", "{\"HeartbeatIntervalSeconds\": 5,\n \"Urls\": [\n  \"http://a/\",\n  42],\n \"TcpEndpoints\": []}", "h.config:4: Urls[1]: must be a string", ErrWrongType},
		{"bad url", "{\"HeartbeatIntervalSeconds\": 5,\n \"Urls\": [\"http://a/\",\n  \"ftp://b/\"],\n \"TcpEndpoints\": []}", `h.config:3: Urls[1]: scheme "ftp" not supported (want http or https)`, ErrInvalidValue},
		{"url without scheme", "{\"HeartbeatIntervalSeconds\": 5, \"Urls\": [\"www.google.com\"], \"TcpEndpoints\": []}", "h.config:1: Urls[0]: must be an http:// or https:// URL", ErrInvalidValue},
		{"bad endpoint", "{\"HeartbeatIntervalSeconds\": 5, \"Urls\": [],\n \"TcpEndpoints\": [\"192.168.1.1\"]}", "h.config:2: TcpEndpoints[0]: must be host:port (e.g. 10.0.0.1:22 or db.example.com:5432)", ErrInvalidValue},
		{"duplicate url", "{\"HeartbeatIntervalSeconds\": 5,\n \"Urls\": [\"http://a/\",\n \"http://a/\"], \"TcpEndpoints\": []}", "h.config:3: Urls[1]: duplicate entry (first at line 2)", ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse("h.config", []byte(tt.json), lookupTestEnv)
			if err == nil {
				t.Fatal("no error")
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got: %s\nwant: %s", got, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false", tt.kind)
			}
		})
	}
}

// TestValidateBuiltInCode covers Validate on checks built in code (no file, no lines).
func TestValidateBuiltInCode(t *testing.T) {
	t.Parallel()
	ok := Check{Name: "a", Type: TypeTCP, Target: "h:1"}
	ok.ApplyDefaults()
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaulted check: %v", err)
	}
	bad := ok
	bad.Timeout = time.Hour
	bad.HTTP.Method = "GET"
	if got, want := errString(bad.Validate()), "http: only used by http checks\ntimeout: must be less than interval (30s)"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	f := &File{Checks: []Check{ok, ok}}
	if got, want := errString(f.Validate()), `checks[1].name: duplicate name "a" (also checks[0])`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	h := Check{Name: "h", Type: TypeHTTP, Target: "http://x/", HTTP: HTTPOptions{BodyMatches: []*regexp.Regexp{nil}}}
	h.ApplyDefaults()
	if got, want := errString(h.Validate()), "http.body_matches[0]: missing regular expression"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestDecodeErrorsAtOnce checks that problems of every kind, in several
// checks, are reported together: one bad value never stops the decode.
func TestDecodeErrorsAtOnce(t *testing.T) {
	t.Parallel()
	src := `checks:
  - name: a
    type: tcp
    target: h:1
    intervl: 10s
    failure_threshold: many
  - &b
    name: b
    type: http
    target: http://h/
    each_address: maybe
    http:
      methd: GET
      valid_status_codes: [200, x]
  - name: c
    type: dns
    target: 1.2.3.4
`
	want := "t.yaml:5: checks[0].intervl: unknown field (did you mean \"interval\"?)\n" +
		"t.yaml:6: checks[0].failure_threshold: must be a whole number\n" +
		"t.yaml:11: checks[1].each_address: must be true or false\n" +
		"t.yaml:13: checks[1].http.methd: unknown field (did you mean \"method\"?)\n" +
		"t.yaml:14: checks[1].http.valid_status_codes[1]: must be a whole number\n" +
		"t.yaml:17: checks[2].target: must be a DNS name, not an IP address"
	_, err := parse("t.yaml", []byte(src), lookupTestEnv)
	if got := errString(err); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestMergePrecedence pins YAML's rules: an explicit key wins over a merged
// one wherever << stands, and in <<: [*a, *b] the first mapping wins.
func TestMergePrecedence(t *testing.T) {
	t.Parallel()
	src := `x-a: &a {interval: 10s, timeout: 1s}
x-b: &b {interval: 20s, timeout: 2s, jitter: 0.2}
checks:
  - name: c
    interval: 30s
    <<: [*a, *b]
    type: tcp
    target: h:1
`
	f, err := parse("t.yaml", []byte(src), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Checks[0]
	if c.Interval != 30*time.Second || c.Timeout != time.Second || c.Jitter != 0.2 {
		t.Errorf("interval %v (want 30s), timeout %v (want 1s), jitter %v (want 0.2)", c.Interval, c.Timeout, c.Jitter)
	}
}
