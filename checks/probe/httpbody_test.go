package probe

import (
	"bytes"
	"net/http"
	"net/http/httptest"
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
	}, nil)
}
