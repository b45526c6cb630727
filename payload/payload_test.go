package payload

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// expected builds the body /heartbeat/{n} must return, independently of the server's buffer.
func expected(n int) string {
	return strings.Repeat(Pattern, n/len(Pattern)+1)[:n]
}

func newTestServer(t *testing.T, cfg Config) (*Server, *httptest.Server) {
	t.Helper()
	if cfg.MaxSize == 0 {
		cfg.MinSize, cfg.MaxSize, cfg.MaxUpload = DefaultMinSize, DefaultMaxSize, DefaultMaxUpload
	}
	if cfg.Version == "" {
		cfg.Version = "1.2.3"
	}
	if cfg.Host == "" {
		cfg.Host = "test-pod"
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		_ = s.Close()
	})
	return s, ts
}

func TestHeartbeatBodies(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	for _, n := range []int{1, 2, 15, 16, 17, 1024, 1025, 65536, 65537, bufSize - 1, bufSize, bufSize + 1, 1 << 20} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			resp, err := http.Get(ts.URL + "/heartbeat/" + strconv.Itoa(n))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %q", resp.StatusCode, body)
			}
			if got, want := resp.Header.Get("Content-Length"), strconv.Itoa(n); got != want {
				t.Errorf("Content-Length %q, want %q", got, want)
			}
			if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
				t.Errorf("Content-Type %q", got)
			}
			if string(body) != expected(n) {
				t.Errorf("body differs from the pattern (len %d, want %d)", len(body), n)
			}
			if got := resp.Header.Get("X-Heartbeat-Host"); got != "test-pod" {
				t.Errorf("X-Heartbeat-Host %q", got)
			}
			if got := resp.Header.Get("Server-Timing"); !strings.HasPrefix(got, "app;dur=") {
				t.Errorf("Server-Timing %q", got)
			} else if _, err := strconv.ParseFloat(strings.TrimPrefix(got, "app;dur="), 64); err != nil {
				t.Errorf("Server-Timing dur: %v", err)
			}
		})
	}
}

func TestGoHeartbeatExamples(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	for path, want := range map[string]string{"/heartbeat/17": "0123456789ABCDEF0", "/version": "1.2.3\n"} {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != want {
			t.Errorf("%s: got %q, want %q", path, body, want)
		}
	}
	resp, err := http.Get(ts.URL + "/heartbeat/1025")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) != 1025 || body[1024] != '0' {
		t.Errorf("/heartbeat/1025 must be 1025 bytes ending in 0; got %d bytes ending in %q", len(body), body[len(body)-1:])
	}
}

// rawGet sends a request line verbatim, so paths Go's client would clean or escape reach the server as written.
func rawGet(t *testing.T, addr, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestBadSizes(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	addr := strings.TrimPrefix(ts.URL, "http://")
	tests := []struct {
		target string
		reason string
	}{
		{"/heartbeat/0", "size out of range: 0 is not in [1, 1048576]\n"},
		{"/heartbeat/1048577", "size out of range: 1048577 is not in [1, 1048576]\n"},
		{"/heartbeat/-1", "size must be a plain decimal integer: \"-1\"\n"},
		{"/heartbeat/abc", "size must be a plain decimal integer: \"abc\"\n"},
		{"/heartbeat/1e3", "size must be a plain decimal integer: \"1e3\"\n"},
		{"/heartbeat/+5", "size must be a plain decimal integer: \"+5\"\n"},
		{"/heartbeat/%205", "size must be a plain decimal integer: \" 5\"\n"},
		{"/heartbeat/5%20", "size must be a plain decimal integer: \"5 \"\n"},
		{"/heartbeat/99999999999999999999", "size out of range: 99999999999999999999 is not in [1, 1048576]\n"},
		{"/heartbeat/", "size must be a plain decimal integer: empty\n"},
		{"/heartbeat/17/", "size must be a plain decimal integer: \"17/\"\n"},
		{"/heartbeat/1.5", "size must be a plain decimal integer: \"1.5\"\n"},
		{"/heartbeat/0x10", "size must be a plain decimal integer: \"0x10\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			status, body := rawGet(t, addr, tt.target)
			if status != http.StatusBadRequest {
				t.Errorf("status %d, want 400", status)
			}
			if body != tt.reason {
				t.Errorf("body %q, want %q", body, tt.reason)
			}
			if strings.Count(body, "\n") != 1 {
				t.Errorf("reason must be one line: %q", body)
			}
		})
	}
}

func TestBoundsFromConfig(t *testing.T) {
	_, ts := newTestServer(t, Config{MinSize: 10, MaxSize: 100, MaxUpload: 1000})
	for _, tt := range []struct {
		n    int
		want int
	}{{9, 400}, {10, 200}, {100, 200}, {101, 400}} {
		resp, err := http.Get(ts.URL + "/heartbeat/" + strconv.Itoa(tt.n))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("n=%d: status %d, want %d", tt.n, resp.StatusCode, tt.want)
		}
	}
}

func TestGiBStreamsFromSmallBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer")
	}
	_, ts := newTestServer(t, Config{MinSize: 1, MaxSize: 1 << 30, MaxUpload: 1})
	resp, err := http.Get(ts.URL + "/heartbeat/" + strconv.Itoa(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Check the content in phase across the whole stream without holding it.
	var total int64
	buf := make([]byte, 1<<20)
	for {
		n, err := resp.Body.Read(buf)
		for i := 0; i < n; i++ {
			if buf[i] != Pattern[(total+int64(i))%int64(len(Pattern))] {
				t.Fatalf("byte %d is %q", total+int64(i), buf[i])
			}
		}
		total += int64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != 1<<30 {
		t.Fatalf("read %d bytes, want %d", total, 1<<30)
	}
}

func TestMethods(t *testing.T) {
	_, ts := newTestServer(t, Config{MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 20})
	tests := []struct {
		name       string
		method     string
		body       io.Reader
		wantStatus int
		wantBody   string
		wantAllow  string
	}{
		{"HEAD", http.MethodHead, nil, 200, "", ""},
		{"POST small", http.MethodPost, strings.NewReader("hello"), 200, expected(17), ""},
		{"PUT", http.MethodPut, strings.NewReader("x"), 200, expected(17), ""},
		{"POST at max-upload", http.MethodPost, bytes.NewReader(make([]byte, 1<<20)), 200, expected(17), ""},
		{"POST over max-upload", http.MethodPost, bytes.NewReader(make([]byte, 1<<20+1)), 413, "request body larger than max-upload 1048576 bytes\n", ""},
		// No Content-Length: the limit must hold on the streamed bytes too.
		{"POST chunked over max-upload", http.MethodPost, io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), strings.NewReader("x")), 413, "request body larger than max-upload 1048576 bytes\n", ""},
		{"DELETE", http.MethodDelete, nil, 405, "method DELETE not allowed\n", "GET, HEAD, POST, PUT"},
		{"PATCH", http.MethodPatch, nil, 405, "method PATCH not allowed\n", "GET, HEAD, POST, PUT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, ts.URL+"/heartbeat/17", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "POST chunked over max-upload" {
				req.ContentLength = -1
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if string(body) != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow %q, want %q", got, tt.wantAllow)
			}
			if tt.method == http.MethodHead && resp.Header.Get("Content-Length") != "17" {
				t.Errorf("HEAD Content-Length %q, want 17", resp.Header.Get("Content-Length"))
			}
		})
	}
}

// countingReader produces n bytes without holding them, so a large upload costs no test memory.
type countingReader struct{ left int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := min(int64(len(p)), c.left)
	c.left -= n
	return int(n), nil
}

func TestPOSTLargeStreamedBody(t *testing.T) {
	_, ts := newTestServer(t, Config{MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 30})
	const size = 256 << 20
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/heartbeat/1", &countingReader{left: size})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: the server must stream it, not trust a length
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "0" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s, ts := newTestServer(t, Config{})
	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz before SetReady: %d, want 503", code)
	}
	s.SetReady(true)
	if code, body := get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz when ready: %d %q", code, body)
	}
	s.SetReady(false)
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if code, _ := get("/nope"); code != 404 {
		t.Errorf("/nope: %d, want 404", code)
	}
}

func TestMountedHandler(t *testing.T) {
	s, err := New(Config{MinSize: 1, MaxSize: 10, Version: "v", Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	s.Handle("/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `{"ok":true}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("got %q %q", body, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("Server-Timing") == "" || resp.Header.Get("X-Heartbeat-Host") != "h" {
		t.Errorf("mounted routes must carry Server-Timing and X-Heartbeat-Host: %v", resp.Header)
	}

	// A handler that writes nothing still answers 200 with Server-Timing.
	s.Handle("/empty", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	resp, err = http.Get(ts.URL + "/empty")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Server-Timing") == "" {
		t.Errorf("/empty: status %d, Server-Timing %q", resp.StatusCode, resp.Header.Get("Server-Timing"))
	}
}

func TestAccessLog(t *testing.T) {
	out := &testkit.Buffer{}
	s, ts := newTestServer(t, Config{AccessLog: out})
	for _, p := range []string{"/heartbeat/17", "/heartbeat/0"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ts.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %q", out.String())
	}
	want := [][3]string{{"/heartbeat/17", "200", "17"}, {"/heartbeat/0", "400", "44"}}
	for i, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) != 7 {
			t.Fatalf("line %q has %d fields, want 7", line, len(f))
		}
		if _, err := time.Parse(time.RFC3339, f[0]); err != nil {
			t.Errorf("time field: %v", err)
		}
		if _, _, err := net.SplitHostPort(f[1]); err != nil {
			t.Errorf("remote address %q: %v", f[1], err)
		}
		if f[2] != "GET" || f[3] != want[i][0] || f[4] != want[i][1] || f[5] != want[i][2] {
			t.Errorf("line %q, want path %s status %s bytes %s", line, want[i][0], want[i][1], want[i][2])
		}
		if _, err := strconv.ParseInt(f[6], 10, 64); err != nil {
			t.Errorf("duration field %q: %v", f[6], err)
		}
	}
}

func TestAccessLogEscapesControlBytes(t *testing.T) {
	got := string(appendClean(nil, "/a\tb\nc\x7f"))
	if want := `/a\x09b\x0ac\x7f`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{MinSize: -1, MaxSize: 1}, "invalid payload config: min-size -1 is negative"},
		{Config{MinSize: 5, MaxSize: 4}, "invalid payload config: max-size 4 is below min-size 5"},
		{Config{MinSize: 1, MaxSize: 1, MaxUpload: -1}, "invalid payload config: max-upload -1 is negative"},
		{Config{MinSize: 1, MaxSize: 1, Host: "a\nb"}, `invalid payload config: host "a\nb" contains a line break`},
	} {
		_, err := New(tt.cfg)
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    int64
		wantErr error
	}{
		{"1", 1, nil}, {"17", 17, nil}, {"007", 7, nil}, {"1048576", 1048576, nil},
		{"0000000000000000000000001", 1, nil},
		{"", 0, ErrNotInteger}, {"0", 0, ErrOutOfRange}, {"-1", 0, ErrNotInteger},
		{"+5", 0, ErrNotInteger}, {" 5", 0, ErrNotInteger}, {"1e3", 0, ErrNotInteger},
		{"1048577", 0, ErrOutOfRange}, {"99999999999999999999", 0, ErrOutOfRange},
		{"٣", 0, ErrNotInteger},
	} {
		got, err := ParseSize(tt.in, 1, 1<<20)
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"1", "17", "1048576", "0", "-1", "abc", "1e3", "+5", " 5", "99999999999999999999", "007", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s, 1, 1<<30)
		ref, refErr := strconv.ParseUint(s, 10, 63)
		plain := s != "" && strings.Trim(s, "0123456789") == ""
		switch {
		case err == nil:
			if !plain || refErr != nil || int64(ref) != n || n < 1 || n > 1<<30 {
				t.Fatalf("ParseSize(%q) accepted %d (strconv: %d, %v)", s, n, ref, refErr)
			}
		case plain && refErr == nil && ref >= 1 && ref <= 1<<30:
			t.Fatalf("ParseSize(%q) rejected an in-range integer: %v", s, err)
		case !errors.Is(err, ErrNotInteger) && !errors.Is(err, ErrOutOfRange):
			t.Fatalf("ParseSize(%q): unexpected error %v", s, err)
		}
		if err != nil && strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("reason must be one line: %q", err)
		}
	})
}
