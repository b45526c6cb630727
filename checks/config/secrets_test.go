package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretsResolved(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "token", "file-token\n")
	writeFile(t, dir, "pw", "file-password\r\n")
	writeFile(t, dir, "body.json", `{"k": "v"}`)
	src := `
checks:
  - name: a
    type: http
    target: http://h/
    http:
      headers:
        Authorization: "Bearer ${env:HB_TOKEN}"
        X-File: "${file:token}"
        X-Abs: "${file:` + filepath.Join(dir, "token") + `}"
        X-Literal: "$${env:HB_TOKEN} and ${not:a-ref} and ${"
      body: "${file:body.json}"
  - name: b
    type: http
    target: http://h/
    http:
      basic_auth: {username: "${env:HB_TOKEN}", password_file: pw}
  - name: c
    type: http
    target: http://h/
    http:
      basic_auth: {username: u, password: "pre-${env:HB_TOKEN}-${file:pw}"}
  - name: d
    type: tcp
    target: "h:1"
    tcp: {send: "AUTH ${env:HB_TOKEN}\r\n"}
`
	f, err := parse(filepath.Join(dir, "checks.yaml"), []byte(src), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	h := f.Checks[0].HTTP
	for k, want := range map[string]string{
		"Authorization": "Bearer s3cr3t-token",
		"X-File":        "file-token",
		"X-Abs":         "file-token",
		"X-Literal":     "${env:HB_TOKEN} and ${not:a-ref} and ${",
	} {
		if got := h.Headers[k]; got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if h.Body != `{"k": "v"}` {
		t.Errorf("body = %q", h.Body)
	}
	if got := *f.Checks[1].HTTP.BasicAuth; got != (BasicAuth{"s3cr3t-token", "file-password"}) {
		t.Errorf("basic auth b = %#v", got.Password)
	}
	if got := f.Checks[2].HTTP.BasicAuth.Password; got != "pre-s3cr3t-token-file-password" {
		t.Errorf("password c = %q", got)
	}
	if got := f.Checks[3].TCP.Send; got != "AUTH s3cr3t-token\r\n" {
		t.Errorf("send = %q", got)
	}
}

// TestNoSecretInErrors makes every error that can sit next to a secret
// happen, and checks that no secret value reaches the message.
func TestNoSecretInErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "pw", "hunter2-file\n")
	secrets := []string{"s3cr3t-token", "line1", "line2", "hunter2", "urlpass", "inline-pw", "body-secret"}
	cases := []struct{ src, want string }{
		// Bad header value from env, bad username next to a password, bad
		// status codes next to a secret body, bad port in a URL with a password.
		{`checks:
  - name: a
    type: http
    target: http://user:urlpass@h:99999/
    http:
      headers: {X-A: "${env:HB_NEWLINE}", X-B: "${env:HB_TOKEN}", "Bad Header": "${env:HB_TOKEN}"}
      body: body-secret
      valid_status_codes: [1]
      basic_auth: {username: "a:b", password: inline-pw}
`, `checks[0].http.basic_auth.username: must not contain`},
		// Unparsable URL holding a password.
		{"checks:\n  - {name: a, type: http, target: \"http://user:urlpass@h/%zz\"}\n", `checks[0].target: must be an http`},
		{"checks:\n  - {name: a, type: http, target: \"ftp://user:urlpass@h/\"}\n", `scheme "ftp"`},
		{"checks:\n  - {name: a, type: tcp, target: \"http://user:urlpass@h/\"}\n", `must be host:port, not a URL`},
		{"checks:\n  - {name: a, type: http, target: \"http://user:urlpass@10.0.0.1/\", each_address: true}\n", `each_address: target host is already`},
		// Password and password_file both given; unterminated reference.
		{"checks:\n  - {name: a, type: http, target: \"http://h/\", http: {basic_auth: {username: u, password: inline-pw, password_file: pw}}}\n", `set either password or password_file`},
		{"checks:\n  - {name: a, type: http, target: \"http://h/\", http: {body: \"body-secret ${env:HB_TOKEN\"}}\n", `reference has no closing }`},
		// Type errors on secret-bearing fields.
		{"checks:\n  - {name: a, type: http, target: \"http://h/\", http: {headers: {X-A: [inline-pw]}, body: {body-secret: 1}}}\n", `checks[0].http.headers.X-A: must be a string`},
		// Syntax errors on lines holding secrets.
		{"checks:\n  - name: a\n    type: http\n    target: http://h/\n    http:\n      basic_auth: {username: u, password: \"inline-pw}\n", `invalid YAML: could not find end character`},
		{"checks:\n  - name: a\n    http:\n      body: body-secret\n     headers: {X: inline-pw}\n", `invalid YAML: value is not allowed`},
		{"checks:\n  - name: a\n    http: {body: [body-secret}\n", `invalid YAML: ',' or ']' must be specified`},
		// Duplicate names built from legacy URLs with passwords.
		{`{"HeartbeatIntervalSeconds": 5, "Urls": ["http://u:urlpass@h/", "http://u:urlpass@h/", "http://u:urlpass@h:0/"], "TcpEndpoints": []}`, `Urls[1]: duplicate entry`},
		{`{"HeartbeatIntervalSeconds": 5, "Urls": ["ftp://u:urlpass@h/", "http://u:urlpass@h/%zz"], "TcpEndpoints": []}`, `Urls[1]: must be an http`},
		{`{"HeartbeatIntervalSeconds": 5, "Urls": ["http://u:urlpass@h/"` + "\n" + `"TcpEndpoints": []}`, `invalid JSON`},
	}
	for i, tc := range cases {
		_, err := parse(filepath.Join(dir, "checks.yaml"), []byte(tc.src), lookupTestEnv)
		if err == nil {
			t.Errorf("case %d: no error", i)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d: error does not contain %q:\n%s", i, tc.want, err)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("case %d: error reveals %q:\n%s", i, s, err)
			}
		}
	}
}

func TestDisplayTarget(t *testing.T) {
	t.Parallel()
	tests := []struct{ target, want string }{
		{"http://h/", "http://h/"},
		{"http://user@h/", "http://user@h/"},
		{"http://user:pw@h/", "http://user:xxxxx@h/"},
		{"https://user:p%40ss@h:8443/x?y=1", "https://user:xxxxx@h:8443/x?y=1"},
		{"http://user:pw@h/%zz", "http://user:xxxxx@h/%zz"},        // url.Parse fails
		{"http://user:p@w@h:99999/", "http://user:xxxxx@h:99999/"}, // ditto, '@' in password
		{"http://user:pa/ss@h/", "http://user:xxxxx@h/"},           // ditto, raw '/' in password
		{"http://h:99999/a", "http://h:99999/a"},
		{"h:22", "h:22"},
		{"example.com", "example.com"},
	}
	for _, tt := range tests {
		c := Check{Target: tt.target}
		if got := c.DisplayTarget(); got != tt.want {
			t.Errorf("DisplayTarget(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}
}

// TestPrintingHidesSecrets covers the ways a Check ends up in logs by accident.
func TestPrintingHidesSecrets(t *testing.T) {
	t.Parallel()
	c := Check{
		Name: "a", Type: TypeHTTP, Target: "http://u:urlpass@h/",
		HTTP: HTTPOptions{BasicAuth: &BasicAuth{Username: "u", Password: "inline-pw"},
			ProxyURL: (*ProxyURL)(&url.URL{Scheme: "http", User: url.UserPassword("p", "proxy-pw"), Host: "proxy:3128"})},
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "check", c, "auth", c.HTTP.BasicAuth, "ptr", &c)
	outputs := map[string]string{
		"%v":       fmt.Sprintf("%v", c),
		"%+v":      fmt.Sprintf("%+v", c),
		"ptr":      fmt.Sprint(&c),
		"auth %v":  fmt.Sprintf("%v", c.HTTP.BasicAuth),
		"auth %+v": fmt.Sprintf("%+v", *c.HTTP.BasicAuth),
		"auth %#v": fmt.Sprintf("%#v", *c.HTTP.BasicAuth),
		"http %+v": fmt.Sprintf("%+v", c.HTTP),
		"http %#v": fmt.Sprintf("%#v", c.HTTP),
		"slog":     buf.String(),
	}
	for how, out := range outputs {
		if strings.Contains(out, "urlpass") || strings.Contains(out, "inline-pw") || strings.Contains(out, "proxy-pw") {
			t.Errorf("%s reveals a secret: %s", how, out)
		}
	}
	if got := fmt.Sprint(c); got != "a (http http://u:xxxxx@h/)" {
		t.Errorf("String() = %q", got)
	}
	if !strings.Contains(buf.String(), `"check":{"name":"a","type":"http","target":"http://u:xxxxx@h/"}`) {
		t.Errorf("slog output: %s", buf.String())
	}
}

func TestSecretFileLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, maxSecretFile+1), 0o600); err != nil {
		t.Fatal(err)
	}
	r := secretResolver{baseDir: dir, lookup: lookupTestEnv}
	_, err := r.resolve("${file:big}")
	if want := fmt.Sprintf("cannot read %q: larger than %d bytes", big, maxSecretFile); errString(err) != want {
		t.Errorf("got %v, want %q", err, want)
	}
}
