package probe

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// payloadServer serves /{n}: n bytes of the payload alphabet, as a peer
// sidecar's /heartbeat/{n} does.
func payloadServer(t *testing.T) *httptest.Server {
	t.Helper()
	chunk := bytes.Repeat([]byte("0123456789ABCDEF"), 4096)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Path[1:])
		if err != nil {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(n))
		for n > 0 {
			m, err := w.Write(chunk[:min(n, len(chunk))])
			if err != nil {
				return
			}
			n -= m
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestHTTPLargeBodyWithoutAssertion requires a body larger than any cap to
// pass when nothing needs its contents: it is read to the end and dropped.
func TestHTTPLargeBodyWithoutAssertion(t *testing.T) {
	testkit.CheckLeaks(t)
	srv := payloadServer(t)
	sizes := []int{0, 1, 16 << 20, 40 << 20}
	runTable(t, sizes, func(n int) tableCase {
		return tableCase{name: strconv.Itoa(n) + " bytes",
			check: config.Check{Type: config.TypeHTTP, Target: srv.URL + "/" + strconv.Itoa(n)}}
	}, func(t *testing.T, n int, _ *config.Check, res Result) {
		if res.BodyBytes != int64(n) {
			t.Errorf("counted %d body bytes, want %d", res.BodyBytes, n)
		}
	})
}

// TestHTTPMaxBodyBytes covers the body regexps on a body longer than
// max_body_bytes: they see its first max_body_bytes, the whole body is still
// read and counted, and a failed match says the limit was hit.
func TestHTTPMaxBodyBytes(t *testing.T) {
	testkit.CheckLeaks(t)
	srv := payloadServer(t)
	re := regexp.MustCompile
	type row = struct {
		name       string
		size       int
		opts       config.HTTPOptions
		wantType   string
		wantReason string
	}
	rows := []row{
		{name: "match in the kept part", size: 16 << 20, opts: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("^0123")}}},
		{name: "no match in the kept part", size: 64 << 10, opts: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("F0{3}")}, MaxBodyBytes: 1000},
			wantType: ErrBodyMismatch, wantReason: `body does not match "F0{3}" in its first 1000 bytes (max_body_bytes; the body has 65536)`},
		{name: "no match in a body within the limit", size: 1000, opts: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("x")}, MaxBodyBytes: 1000},
			wantType: ErrBodyMismatch, wantReason: `body does not match "x"`},
		{name: "exactly the limit", size: 1000, opts: config.HTTPOptions{BodyMatches: []*regexp.Regexp{re("^0123.*7$")}, MaxBodyBytes: 1000}},
		{name: "not matches sees only the kept part", size: 64 << 10, opts: config.HTTPOptions{BodyNotMatches: []*regexp.Regexp{re("^.{1000}")}, MaxBodyBytes: 999}},
		{name: "not matches in the kept part", size: 16 << 20, opts: config.HTTPOptions{BodyNotMatches: []*regexp.Regexp{re("DEF")}},
			wantType: ErrBodyMismatch, wantReason: `body matches "DEF"`},
	}
	runTable(t, rows, func(r row) tableCase {
		return tableCase{name: r.name, wantType: r.wantType,
			check: config.Check{Type: config.TypeHTTP, Target: srv.URL + "/" + strconv.Itoa(r.size), HTTP: r.opts}}
	}, func(t *testing.T, r row, c *config.Check, res Result) {
		if res.BodyBytes != int64(r.size) {
			t.Errorf("counted %d body bytes, want %d", res.BodyBytes, r.size)
		}
		if r.wantReason != "" && res.Reason != r.wantReason {
			t.Errorf("reason %q, want %q", res.Reason, r.wantReason)
		}
		if r.opts.MaxBodyBytes == 0 && c.HTTP.MaxBodyBytes != config.DefaultMaxBodyBytes {
			t.Errorf("max_body_bytes %d, want the default %d", c.HTTP.MaxBodyBytes, config.DefaultMaxBodyBytes)
		}
	})
}
