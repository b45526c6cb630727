package payload

import (
	"io"
	"net/http"
	"strconv"
	"time"
)

// ServerTimingRecv is the Server-Timing metric an upload's answer carries:
// how long the request body took to arrive, first byte to last, so that an
// uploading client can measure throughput without its socket buffers
// skewing its own write times.
const ServerTimingRecv = "recv"

// recvTimer notes when the first and the last byte of a body arrived.
type recvTimer struct {
	io.ReadCloser
	first, last time.Time
}

func (t *recvTimer) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		now := time.Now()
		if t.first.IsZero() {
			t.first = now
		}
		t.last = now
	}
	return n, err
}

// elapsed is first to last byte; zero when at most one read carried data.
func (t *recvTimer) elapsed() time.Duration { return t.last.Sub(t.first) }

// takeBody reads and drops an upload's body before a payload route answers;
// done is true when it has answered itself (an unknown method, a body too
// large, too slow or cut short). rec carries the body's size.
func (s *Server) takeBody(w http.ResponseWriter, r *http.Request, start time.Time) (rec record, recv time.Duration, done bool) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodPost, http.MethodPut:
		n, rcv, status, msg := s.discardBody(w, r)
		rec.requestBytes, recv = n, rcv
		if status != 0 {
			out := s.serveText(w, r, status, msg, start)
			out.requestBytes = n
			return out, 0, true
		}
	default:
		w.Header()["Allow"] = s.allowHdr
		return s.serveText(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed", start), 0, true
	}
	return rec, recv, false
}

// serverTiming is the Server-Timing value: app alone, and recv after it
// for requests that had a body.
func (s *Server) serverTiming(app, recv time.Duration) []string {
	v := s.timing.get(app)
	if recv <= 0 {
		return v
	}
	return []string{v[0] + ", " + ServerTimingRecv + ";dur=" + strconv.FormatFloat(float64(recv.Microseconds())/1000, 'f', 3, 64)}
}
