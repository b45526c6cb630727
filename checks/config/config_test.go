package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// GoHeartbeat's test list: TestReadConfig ... TestReadConfigMissingTcpEndpoints.

func TestReadConfig(t *testing.T) {
	t.Parallel()
	f, err := Load("testdata/heartbeat.config")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, typ, target string }{
		{"http://127.0.0.1:8080/heartbeat/1024", TypeHTTP, "http://127.0.0.1:8080/heartbeat/1024"},
		{"https://user:xxxxx@127.0.0.1:8443/heartbeat/16", TypeHTTP, "https://user:secret@127.0.0.1:8443/heartbeat/16"},
		{"127.0.0.1:22", TypeTCP, "127.0.0.1:22"},
	}
	if len(f.Checks) != len(want) {
		t.Fatalf("got %d checks, want %d", len(f.Checks), len(want))
	}
	for i, w := range want {
		c := f.Checks[i]
		if c.Name != w.name || c.Type != w.typ || c.Target != w.target {
			t.Errorf("check %d = %q %q %q, want %q %q %q", i, c.Name, c.Type, c.Target, w.name, w.typ, w.target)
		}
		if c.Interval != 30*time.Second || c.Timeout != 5*time.Second || c.Jitter != DefaultJitter ||
			c.FailureThreshold != 1 || c.SuccessThreshold != 1 {
			t.Errorf("check %d timing = %v/%v/%v/%d/%d", i, c.Interval, c.Timeout, c.Jitter, c.FailureThreshold, c.SuccessThreshold)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("check %d: %v", i, err)
		}
	}
	if h := f.Checks[0].HTTP; h.Method != "GET" || h.MaxRedirects != 10 || h.NoFollowRedirects {
		t.Errorf("legacy http defaults = %+v", h)
	}
	if f.Path != "testdata/heartbeat.config" {
		t.Errorf("Path = %q", f.Path)
	}
}

func TestReadConfigDoesNotExist(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "heartbeat.config")
	_, err := Load(p)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrRead) {
		t.Fatalf("err = %v; want ErrRead wrapping fs.ErrNotExist", err)
	}
	if want := p + ": cannot read file: no such file or directory"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestReadConfigIsADirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := Load(dir)
	if want := dir + ": cannot read file: is a directory"; errString(err) != want || !errors.Is(err, ErrRead) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestReadConfigMalformedJson(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), "heartbeat.config", "{\n  \"HeartbeatIntervalSeconds\": 30,\n  \"Urls\": [\"http://a/\",\n")
	_, err := Load(p)
	if !errors.Is(err, ErrSyntax) {
		t.Fatalf("err = %v, want ErrSyntax", err)
	}
	if want := p + ":4: invalid JSON: parsing value: unexpected EOF (column 1)"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestReadConfigMissingInterval(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), "heartbeat.config", `{"Urls": ["http://a/"], "TcpEndpoints": ["a:1"], "TimeoutSeconds": 5}`)
	_, err := Load(p)
	if want := p + ":1: HeartbeatIntervalSeconds: required"; errString(err) != want || !errors.Is(err, ErrMissingField) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestReadConfigMissingUrls(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), "heartbeat.config", `{"HeartbeatIntervalSeconds": 30, "TcpEndpoints": ["a:1"]}`)
	_, err := Load(p)
	if want := p + ":1: Urls: required (use [] for none)"; errString(err) != want || !errors.Is(err, ErrMissingField) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestReadConfigMissingTcpEndpoints(t *testing.T) {
	t.Parallel()
	p := writeFile(t, t.TempDir(), "heartbeat.config", `{"HeartbeatIntervalSeconds": 30, "Urls": ["http://a/"]}`)
	_, err := Load(p)
	if want := p + ":1: TcpEndpoints: required (use [] for none)"; errString(err) != want || !errors.Is(err, ErrMissingField) {
		t.Errorf("err = %v, want %q", err, want)
	}
}

func TestLegacyEmptyListsAndComments(t *testing.T) {
	t.Parallel()
	// GoHeartbeat's own example, comments and all, plus block comments and a
	// trailing comma.
	src := `// checks for the edge
{
    "HeartbeatIntervalSeconds": 30, // This is the amount of time between heartbeats.
    "Urls": ["http://www.google.com",
             "https://www.google.com"], // These are the URL's you want to check. http/https work.
    "TcpEndpoints": ["192.168.1.1:22"], /* These are the services in IP:port format. */
    "TimeoutSeconds": 5, // This is the amount of time to wait for an unresponsive connection.
}
`
	f, err := parse("h.config", []byte(src), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{f.Checks[0].Name, f.Checks[1].Name, f.Checks[2].Name}; !reflect.DeepEqual(got, []string{"http://www.google.com", "https://www.google.com", "192.168.1.1:22"}) {
		t.Errorf("names = %q", got)
	}

	f, err = parse("h.config", []byte(`{"HeartbeatIntervalSeconds": 3, "Urls": [], "TcpEndpoints": []}`), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Checks) != 0 {
		t.Errorf("got %d checks from empty lists", len(f.Checks))
	}
}

func TestLegacyTimeoutDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		json string
		want time.Duration
	}{
		{`{"HeartbeatIntervalSeconds": 30, "Urls": [], "TcpEndpoints": ["a:1"]}`, 5 * time.Second},
		{`{"HeartbeatIntervalSeconds": 6, "Urls": [], "TcpEndpoints": ["a:1"]}`, 5 * time.Second},
		{`{"HeartbeatIntervalSeconds": 5, "Urls": [], "TcpEndpoints": ["a:1"]}`, 2500 * time.Millisecond},
		{`{"HeartbeatIntervalSeconds": 1, "Urls": [], "TcpEndpoints": ["a:1"]}`, 500 * time.Millisecond},
		{`{"HeartbeatIntervalSeconds": 60, "Urls": [], "TcpEndpoints": ["a:1"], "TimeoutSeconds": 59}`, 59 * time.Second},
		{`{"heartbeatintervalseconds": 60, "urls": [], "tcpendpoints": ["a:1"], "timeoutseconds": 2}`, 2 * time.Second},
	}
	for _, tt := range tests {
		f, err := parse("h.config", []byte(tt.json), lookupTestEnv)
		if err != nil {
			t.Errorf("%s: %v", tt.json, err)
			continue
		}
		if got := f.Checks[0].Timeout; got != tt.want {
			t.Errorf("%s: timeout %v, want %v", tt.json, got, tt.want)
		}
	}
}

func TestFormatDetection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		legacy    bool
	}{
		{"legacy", `{"HeartbeatIntervalSeconds": 30, "Urls": [], "TcpEndpoints": []}`, true},
		{"legacy after comments", "// c\n/* block\n{ */\n  {\"HeartbeatIntervalSeconds\": 30, \"Urls\": [], \"TcpEndpoints\": []}", true},
		{"legacy with BOM", "\xef\xbb\xbf{\"HeartbeatIntervalSeconds\": 30, \"Urls\": [], \"TcpEndpoints\": []}", true},
		{"yaml", "checks: []\n", false},
		{"yaml with BOM", "\xef\xbb\xbfchecks: []\n", false},
		{"yaml after comment", "# {\nchecks: []\n", false},
		{"yaml written as json", `{"checks": [{"name": "a", "type": "tcp", "target": "h:1"}]}`, false},
	}
	for _, tt := range tests {
		if got := isLegacy([]byte(tt.src)); got != tt.legacy {
			t.Errorf("%s: isLegacy = %v", tt.name, got)
		}
		if _, err := parse("x", []byte(tt.src), lookupTestEnv); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestExampleRoundTrip loads testdata/checks.yaml, the documented example of
// every option, and compares it field by field with what it says.
func TestExampleRoundTrip(t *testing.T) {
	t.Setenv("HEARTBEAT_EXAMPLE_TOKEN", "tok-from-env")
	f, err := Load("testdata/checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile
	def := func(c Check) Check {
		c.Interval, c.Timeout, c.Jitter, c.FailureThreshold, c.SuccessThreshold = 30*time.Second, 5*time.Second, 0.1, 1, 1
		return c
	}
	want := []Check{
		{
			Name: "peers", Type: TypeHTTP,
			Target:   "http://heartbeat-peers.default.svc.cluster.local:8080/heartbeat/65536",
			Server:   HostPort{"heartbeat-peers.default.svc.cluster.local", 8080},
			Interval: 10 * time.Second, Timeout: 2 * time.Second, Jitter: 0.2,
			FailureThreshold: 3, SuccessThreshold: 2,
			EachAddress: true, MaxAddresses: 50,
			HTTP: HTTPOptions{
				Method:           "POST",
				Headers:          map[string]string{"X-Token": "tok-from-env", "X-Api-Key": "key-example-password"},
				Body:             `{"probe": true}`,
				ValidStatusCodes: []int{200, 204},
				BodyMatches:      []*regexp.Regexp{re("^0123")},
				BodyNotMatches:   []*regexp.Regexp{re("error")},
				HeaderMatches:    []HeaderMatch{{Header: "Content-Type", Regexp: re("^text/plain")}},
				MaxRedirects:     5,
				BasicAuth:        &BasicAuth{Username: "heartbeat", Password: "example-password"},
				MaxBodyBytes:     1 << 20,
			},
			TLS: TLSOptions{CAFile: "testdata/ca.pem", ServerName: "peers.example.com", MinDaysLeft: 14},
		},
		def(Check{
			Name: "no-redirects", Type: TypeHTTP, Target: "https://user:pass@example.com/health",
			Server: HostPort{"example.com", 443},
			HTTP:   HTTPOptions{Method: "HEAD", NoFollowRedirects: true},
			TLS:    TLSOptions{InsecureSkipVerify: true, MinDaysLeft: 7},
		}),
		def(Check{
			Name: "api-mtls", Type: TypeHTTP, Target: "https://api.example.com/healthz",
			Server: HostPort{"api.example.com", 443},
			Dial:   DialOptions{IPProtocol: "ip6", SourceAddress: netip.MustParseAddr("2001:db8::10")},
			HTTP: HTTPOptions{Method: "GET", MaxRedirects: 10, Version: HTTPVersion2, FailIfNotSSL: true,
				HeaderNotMatches: []HeaderMatch{{Header: "X-Degraded", Regexp: re("^true$")}}},
			TLS: TLSOptions{CertFile: "testdata/client.pem", KeyFile: "testdata/client-key.pem", MinVersion: tls.VersionTLS13},
		}),
		def(Check{
			Name: "via-proxy", Type: TypeHTTP, Target: "http://internal.example.com/", Server: HostPort{"internal.example.com", 80},
			HTTP: HTTPOptions{Method: "GET", MaxRedirects: 10, ProxyURL: (*ProxyURL)(mustURL(t, "http://proxy.example.com:3128"))},
		}),
		def(Check{Name: "ssh", Type: TypeTCP, Target: "127.0.0.1:22", Server: HostPort{"127.0.0.1", 22}, TCP: TCPOptions{Expect: re("^SSH-")}}),
		def(Check{
			Name: "smtps", Type: TypeTCP, Target: "mail.example.com:465", Server: HostPort{"mail.example.com", 465},
			TCP: TCPOptions{Send: "EHLO heartbeat\r\n", Expect: re("^220"), UseTLS: true},
			TLS: TLSOptions{ServerName: "mail.example.com"},
		}),
		def(Check{
			Name: "smtp-starttls", Type: TypeTCP, Target: "mail.example.com:25", Server: HostPort{"mail.example.com", 25},
			TCP: TCPOptions{QueryResponse: []QueryStep{
				{Expect: re("^220 ")}, {Send: "EHLO heartbeat\r"}, {Expect: re("^250-STARTTLS")},
				{Send: "STARTTLS"}, {Expect: re("^220")}, {StartTLS: true}, {Send: "QUIT"},
			}},
			TLS: TLSOptions{ServerName: "mail.example.com"},
		}),
		def(Check{Name: "cert", Type: TypeTLS, Target: "example.com:443", Server: HostPort{"example.com", 443}, TLS: TLSOptions{MinDaysLeft: 21}}),
		def(Check{
			Name: "dns", Type: TypeDNS, Target: "example.com", Server: HostPort{"127.0.0.1", 53},
			DNS: DNSOptions{Server: "127.0.0.1:53", RecordType: "A", Transport: "udp", ValidRcodes: []int{0}, ExpectedAnswers: []string{"1.2.3.4"}},
		}),
		def(Check{Name: "grpc", Type: TypeGRPC, Target: "127.0.0.1:9090", Server: HostPort{"127.0.0.1", 9090}}),
		func() Check {
			c := def(Check{Name: "payload-local", Type: TypeHTTP, Target: "http://127.0.0.1:8080/heartbeat/1024",
				Server: HostPort{"127.0.0.1", 8080},
				HTTP:   HTTPOptions{Method: "GET", ValidStatusCodes: []int{200}, MaxRedirects: 10}})
			c.Interval = 15 * time.Second
			return c
		}(),
		func() Check {
			c := def(Check{Name: "gateway-ping", Type: TypeICMP, Target: "10.0.0.1", Server: HostPort{Host: "10.0.0.1"},
				ICMP: ICMPOptions{Count: 5, Spacing: 200 * time.Millisecond, Size: 56, DontFragment: true, TTL: 64, IPVersion: 4, MaxLoss: 0.2}})
			c.Interval = 10 * time.Second
			return c
		}(),
		func() Check {
			c := def(Check{Name: "overlay-mtu", Type: TypeMTU, Target: "10.0.0.1", Server: HostPort{Host: "10.0.0.1"},
				MTU: MTUOptions{Mode: MTUModeICMP, MinMTU: 1400, MaxMTU: 9000, Ladder: DefaultMTULadder(),
					Tries: 3, Wait: 500 * time.Millisecond, TTL: 64, IPVersion: 4}})
			c.Interval, c.Timeout = 5*time.Minute, 20*time.Second
			return c
		}(),
		func() Check {
			c := def(Check{Name: "overlay-mtu-http", Type: TypeMTU, Target: "http://10.0.0.1:8080", Server: HostPort{"10.0.0.1", 8080},
				MTU: MTUOptions{Mode: MTUModeHTTP, Sizes: DefaultMTUSizes(), FetchTimeout: 2 * time.Second, Tries: 2}})
			c.Interval, c.Timeout = 5*time.Minute, 30*time.Second
			c.URL = mustURL(t, c.Target)
			return c
		}(),
		def(Check{Name: "one-segment", Type: TypeHTTP, Target: "http://127.0.0.1:8080/heartbeat/wire/1448",
			Server: HostPort{"127.0.0.1", 8080}, HTTP: HTTPOptions{Method: "GET", MaxRedirects: 10}}),
		{
			Name: "peer-throughput", Type: TypeThroughput, Target: "http://heartbeat-peers.default.svc.cluster.local:8080",
			Server:   HostPort{"heartbeat-peers.default.svc.cluster.local", 8080},
			Interval: 10 * time.Minute, Timeout: 30 * time.Second, Jitter: 0.1, FailureThreshold: 1, SuccessThreshold: 1,
			EachAddress: true, MaxAddresses: DefaultMaxAddresses,
			Throughput: ThroughputOptions{Direction: DirectionBoth, Bytes: 1 << 20, MinBitsPerSecond: 10e6,
				URL: mustURL(t, "http://heartbeat-peers.default.svc.cluster.local:8080")},
		},
	}
	if len(f.Checks) != len(want) {
		t.Fatalf("got %d checks, want %d", len(f.Checks), len(want))
	}
	for i := range want {
		if want[i].Type == TypeHTTP {
			want[i].URL = mustURL(t, want[i].Target)
		}
		if !reflect.DeepEqual(f.Checks[i], want[i]) {
			t.Errorf("check %d:\n got %#v\nwant %#v", i, f.Checks[i], want[i])
		}
	}
	if err := f.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// Every documented key appears in the example.
	data, err := os.ReadFile("testdata/checks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []reflect.Type{
		reflect.TypeFor[fileYAML](), reflect.TypeFor[timingYAML](), reflect.TypeFor[checkYAML](), reflect.TypeFor[queryStepYAML](),
		reflect.TypeFor[httpYAML](), reflect.TypeFor[basicAuthYAML](), reflect.TypeFor[headerMatchYAML](),
		reflect.TypeFor[tcpYAML](), reflect.TypeFor[tlsYAML](), reflect.TypeFor[dnsYAML](), reflect.TypeFor[grpcYAML](),
		reflect.TypeFor[dialYAML](),
		reflect.TypeFor[icmpYAML](), reflect.TypeFor[mtuYAML](), reflect.TypeFor[throughputYAML](),
	} {
		for _, k := range yamlKeys(typ) {
			if !regexp.MustCompile(`\b` + k + `:`).Match(data) {
				t.Errorf("testdata/checks.yaml does not show %q", k)
			}
		}
	}
}

func TestYAMLDefaultsAndInheritance(t *testing.T) {
	t.Parallel()
	src := `
defaults:
  interval: 1m
  timeout: 10s
  jitter: 0
  failure_threshold: 2
  success_threshold: 3
checks:
  - {name: inherit, type: tcp, target: "h:1"}
  - {name: short, type: tcp, target: "h:1", interval: 4s}          # inherited 10s timeout -> 2s
  - {name: own, type: tcp, target: "h:1", interval: 4s, timeout: 3s}
  - name: nulls                                                    # null means "not set"
    type: http
    target: http://h/
    timeout:
    http:
      method: get
      headers:
        X-Empty:
  - {name: dns, type: DNS, target: example.com., dns: {server: "::1", record_type: aaaa}}
  - {name: dns2, type: dns, target: _sip._tcp.example.com, dns: {server: 10.0.0.1}}
`
	f, err := parse("t.yaml", []byte(src), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Checks
	if c[0].Interval != time.Minute || c[0].Timeout != 10*time.Second || c[0].Jitter != 0 || c[0].FailureThreshold != 2 || c[0].SuccessThreshold != 3 {
		t.Errorf("inherit: %+v", c[0])
	}
	if c[1].Timeout != 2*time.Second {
		t.Errorf("short: timeout %v, want 2s (half the interval)", c[1].Timeout)
	}
	if c[2].Timeout != 3*time.Second {
		t.Errorf("own: timeout %v", c[2].Timeout)
	}
	if c[3].Timeout != 10*time.Second || c[3].HTTP.Method != "GET" || c[3].HTTP.MaxRedirects != 10 {
		t.Errorf("nulls: %v %q %d", c[3].Timeout, c[3].HTTP.Method, c[3].HTTP.MaxRedirects)
	}
	if v, ok := c[3].HTTP.Headers["X-Empty"]; !ok || v != "" {
		t.Errorf("nulls: X-Empty header = %q, %v", v, ok)
	}
	if c[4].Type != TypeDNS || c[4].DNS.Server != "[::1]:53" || c[4].DNS.RecordType != "AAAA" {
		t.Errorf("dns: %q %q %q", c[4].Type, c[4].DNS.Server, c[4].DNS.RecordType)
	}
	if c[5].DNS.Server != "10.0.0.1:53" || c[5].DNS.RecordType != "A" {
		t.Errorf("dns2: %q %q", c[5].DNS.Server, c[5].DNS.RecordType)
	}
}

func TestYAMLAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	src := `
x-peer: &peer
  type: http
  interval: 10s
  http: &peerhttp
    valid_status_codes: [200]
checks:
  - <<: *peer
    name: a
    target: http://a/
  - <<: *peer
    name: b
    target: http://b/
    interval: 20s
    http: *peerhttp
  - name: c
    <<: [*peer]
    target: http://c/
`
	f, err := parse("t.yaml", []byte(src), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 10 * time.Second} {
		c := f.Checks[i]
		if c.Type != TypeHTTP || c.Interval != want || !reflect.DeepEqual(c.HTTP.ValidStatusCodes, []int{200}) {
			t.Errorf("check %d: %q %v %v", i, c.Type, c.Interval, c.HTTP.ValidStatusCodes)
		}
	}
	// A mapping merging itself, or a list containing itself, must not loop.
	for _, src := range []string{
		"checks:\n  - &a\n    <<: *a\n    name: x\n    type: tcp\n    target: h:1\n",
		"checks:\n  - &a {<<: *a, name: x, type: tcp, target: \"h:1\"}\n",
	} {
		if f, err := parse("t.yaml", []byte(src), lookupTestEnv); err != nil || f.Checks[0].Name != "x" {
			t.Errorf("self merge %q: %v", src, err)
		}
	}
	if _, err := parse("t.yaml", []byte("checks: &c\n  - *c\n"), lookupTestEnv); errString(err) != "t.yaml:2: checks[0]: must be a mapping" {
		t.Errorf("self-containing list: %v", err)
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	c := Check{Name: "a", Type: TypeHTTP, Target: "http://h/", EachAddress: true, Interval: 2 * time.Second}
	c.ApplyDefaults()
	want := Check{Name: "a", Type: TypeHTTP, Target: "http://h/", EachAddress: true, MaxAddresses: 100,
		Server: HostPort{"h", 80}, URL: mustURL(t, "http://h/"),
		Interval: 2 * time.Second, Timeout: time.Second, FailureThreshold: 1, SuccessThreshold: 1,
		HTTP: HTTPOptions{Method: "GET", MaxRedirects: 10}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %#v\nwant %#v", c, want)
	}
	d := Check{Name: "d", Type: TypeDNS, Target: "example.com"}
	d.ApplyDefaults()
	if d.DNS.RecordType != "A" || d.Validate() != nil {
		t.Errorf("dns: %q %v", d.DNS.RecordType, d.Validate())
	}
}

func TestDigest(t *testing.T) {
	t.Parallel()
	a, err := parse("t.yaml", []byte("checks: []\n"), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parse("t.yaml", []byte("checks: [] # changed\n"), lookupTestEnv)
	if a.digest == ([32]byte{}) || a.digest == b.digest {
		t.Error("digest missing or not content-dependent")
	}
}

// BenchmarkParseYAML parses a file of 10,000 mesh-style http checks, the
// size the scheduler benchmark uses.
func BenchmarkParseYAML(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("defaults: {interval: 10s, timeout: 2s}\nchecks:\n")
	for i := range 10000 {
		fmt.Fprintf(&sb, "  - name: peer-%d\n    type: http\n    target: http://10.0.%d.%d:8080/heartbeat/65536\n    http: {valid_status_codes: [200], body_matches: [\"^0123\"]}\n", i, i/256, i%256)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse("bench.yaml", data, lookupTestEnv); err != nil {
			b.Fatal(err)
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestDerived pins the values ApplyDefaults derives for every type.
func TestDerived(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, server string // server as String() gives it
		c            Check
		url          bool
	}{
		{"http default port", "h.example:80", Check{Type: TypeHTTP, Target: "http://h.example/x"}, true},
		{"https default port", "h.example:443", Check{Type: TypeHTTP, Target: "https://h.example/x"}, true},
		{"http explicit port", "[::1]:8443", Check{Type: TypeHTTP, Target: "https://[::1]:8443/"}, true},
		{"http bad target", "", Check{Type: TypeHTTP, Target: "ftp://h/"}, false},
		{"tcp", "10.0.0.1:22", Check{Type: TypeTCP, Target: "10.0.0.1:22"}, false},
		{"tls", "h.example:443", Check{Type: TypeTLS, Target: "h.example:443"}, false},
		{"grpc", "[::1]:9090", Check{Type: TypeGRPC, Target: "[::1]:9090"}, false},
		{"tcp bad target", "", Check{Type: TypeTCP, Target: "h"}, false},
		{"dns system resolver", "", Check{Type: TypeDNS, Target: "example.com"}, false},
		{"dns server port added", "10.0.0.53:53", Check{Type: TypeDNS, Target: "example.com", DNS: DNSOptions{Server: "10.0.0.53"}}, false},
		{"dns ipv6 server port added", "[::1]:53", Check{Type: TypeDNS, Target: "example.com", DNS: DNSOptions{Server: "::1"}}, false},
		{"dns named server port added", "ns.example:53", Check{Type: TypeDNS, Target: "example.com", DNS: DNSOptions{Server: "ns.example"}}, false},
		{"dns server port kept", "127.0.0.1:5353", Check{Type: TypeDNS, Target: "example.com", DNS: DNSOptions{Server: "127.0.0.1:5353"}}, false},
		{"unknown type", "", Check{Type: "ftp", Target: "h:1"}, false},
	}
	for _, tt := range tests {
		c := tt.c
		c.ApplyDefaults()
		if got := c.Server.String(); got != tt.server {
			t.Errorf("%s: Server %q, want %q", tt.name, got, tt.server)
		}
		if (c.URL != nil) != tt.url || c.URL != nil && c.URL.String() != c.Target {
			t.Errorf("%s: URL %v", tt.name, c.URL)
		}
	}
	h := Check{Type: TypeHTTP, Target: "http://h/", HTTP: HTTPOptions{NoFollowRedirects: true}}
	h.ApplyDefaults()
	if h.HTTP.Method != "GET" || h.HTTP.MaxRedirects != 0 {
		t.Errorf("no-follow http: method %q, max_redirects %d", h.HTTP.Method, h.HTTP.MaxRedirects)
	}
	if ap, ok := (HostPort{"::1", 53}).AddrPort(); !ok || ap.String() != "[::1]:53" {
		t.Errorf("AddrPort of an IP: %v %v", ap, ok)
	}
	if _, ok := (HostPort{"h.example", 53}).AddrPort(); ok {
		t.Error("AddrPort of a name: ok")
	}
}

// TestTypesComplete checks every type has what validation and derivation use.
func TestTypesComplete(t *testing.T) {
	t.Parallel()
	want := []string{TypeHTTP, TypeTCP, TypeTLS, TypeDNS, TypeGRPC, TypeICMP, TypeMTU, TypeThroughput}
	if got := Types(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Types() = %v, want %v", got, want)
	}
	for _, ct := range checkTypes {
		if ct.usesTLS == nil || ct.targetProblem == nil || ct.derive == nil || (ct.section == "") != (ct.options == nil) || (ct.section == "") != (ct.decodeYAML == nil) {
			t.Errorf("type %q: incomplete entry", ct.name)
		}
	}
}
