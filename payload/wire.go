package payload

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Wire-size route: /heartbeat/wire/{n} answers with n bytes of HTTP/1.1
// response in all (status line, headers, blank line and body), so a probe
// can aim a response at an MTU or MSS boundary. It sits under /heartbeat/ so
// that an ingress routing that prefix reaches it, and "wire" was never a
// valid size there, so no URL that worked before changes meaning.
const (
	wirePrefix = "/heartbeat/wire/"
	RouteWire  = "/heartbeat/wire/{size}"
)

// PadHeader carries pattern bytes that make a wire-size answer exact when
// the body alone cannot (Content-Length gaining a digit skips a total).
const PadHeader = "X-Heartbeat-Pad"

// minWireBody is the smallest body of a wire-size answer: with 0 to 9 body
// bytes one total (where Content-Length gains its second digit) could be
// reached neither by the body nor by a pad header, which is longer.
const minWireBody = 10

const (
	statusLineLen = len("HTTP/1.1 200 OK\r\n")
	clPrefixLen   = len("Content-Length: \r\n") // without the digits
	blankLineLen  = len("\r\n")
	padMinLen     = len(PadHeader+": \r\n") + 1 // at least one pattern byte
)

// wireOptional lists the server's own headers a wire-size answer may drop,
// the first dropped first, when n is too small for all of them.
var wireOptional = [...]string{"X-Content-Type-Options", "Content-Type", "Server-Timing", "X-Heartbeat-Host"}

// wirePlan is how one wire-size answer reaches its total.
type wirePlan struct {
	body   int64
	pad    int      // length of the pad header's value; 0: no pad header
	drop   int      // how many of wireOptional are left out
	closes bool     // the answer carries Connection: close
	min    int64    // the smallest total this request could be answered with
	fixed  []string // the header lines counted, for the 400 message
}

// serveWire answers /heartbeat/wire/{n}.
func (s *Server) serveWire(w http.ResponseWriter, r *http.Request, arg string, start time.Time) record {
	taken, recv, done := s.takeBody(w, r, start)
	if done {
		return taken
	}
	reqBytes := taken.requestBytes
	bad := func(msg string) record {
		out := s.serveText(w, r, http.StatusBadRequest, msg, start)
		out.requestBytes = reqBytes
		return out
	}
	n, err := ParseSize(arg, 0, s.cfg.MaxSize)
	if err != nil {
		return bad("wire size: " + err.Error())
	}
	h := w.Header()
	p := s.planWire(r, h, n, start, recv)
	if n < p.min {
		return bad(fmt.Sprintf("wire size %d is below %d bytes, the smallest exact answer to this request (status line, %s, blank line and a %d-byte body)",
			n, p.min, strings.Join(p.fixed, ", "), minWireBody))
	}
	for _, k := range wireOptional[:p.drop] {
		h[k] = nil // present but empty: Go's server would sniff a missing Content-Type
	}
	if p.pad > 0 {
		h[PadHeader] = []string{string(s.buf[:p.pad])}
	}
	h["Content-Length"] = s.cl.get(p.body)
	w.WriteHeader(http.StatusOK)
	rec := record{status: http.StatusOK, requestBytes: reqBytes}
	if r.Method != http.MethodHead {
		rec.written = s.writeBody(w, r, p.body)
	}
	return rec
}

// planWire sets every header of the full answer except Content-Length and
// works out body and pad lengths for a total of n. Go's server adds only
// Date and Connection to what the handler sets; both are set here, so the
// count is of exactly the bytes it writes.
func (s *Server) planWire(r *http.Request, h http.Header, n int64, start time.Time, recv time.Duration) wirePlan {
	h["Content-Type"] = s.textHdr
	h["X-Content-Type-Options"] = s.nosniff
	h["Date"] = []string{start.UTC().Format(http.TimeFormat)}
	p := wirePlan{closes: wireCloses(r, h, s.ready.Load())}
	switch {
	case r.ProtoMajor != 1:
		// HTTP/2 has no Connection header; the count is of the HTTP/1.1 form.
		delete(h, "Connection")
	case p.closes && r.ProtoMinor >= 1:
		h["Connection"] = []string{"close"}
	case !p.closes && r.ProtoMinor == 0:
		h["Connection"] = []string{"keep-alive"} // Go would add it after the count
	default:
		delete(h, "Connection")
	}
	// Server-Timing last: it is the time spent up to the moment of writing.
	h["Server-Timing"] = s.serverTiming(time.Since(start), recv)

	var cw countWriter
	_ = h.Write(&cw)
	base := int64(statusLineLen+clPrefixLen+blankLineLen) + cw.n
	lines := make([]int64, len(wireOptional)) // each optional header's line length
	for i, k := range wireOptional {
		for _, v := range h[k] {
			lines[i] += int64(len(k) + len(": ") + len(v) + len("\r\n"))
		}
	}
	smallest := base
	for _, l := range lines {
		smallest -= l
	}
	p.min = smallest + minWireBody + digits(minWireBody)
	p.fixed = []string{"Date", "Content-Length"}
	if _, ok := h["Connection"]; ok {
		p.fixed = append(p.fixed, "Connection: "+h["Connection"][0])
	}
	for p.drop = 0; p.drop <= len(wireOptional); p.drop++ {
		if body, pad, ok := fitWire(n - base); ok {
			p.body, p.pad = body, pad
			return p
		}
		if p.drop < len(wireOptional) {
			base -= lines[p.drop]
		}
	}
	return p
}

// wireCloses reports whether Go's server will close the connection after
// this answer, which decides whether it writes Connection: close.
func wireCloses(r *http.Request, h http.Header, ready bool) bool {
	if r.ProtoMajor != 1 {
		return false
	}
	for _, v := range h["Connection"] {
		if hasToken(v, "close") {
			return true
		}
	}
	// While draining, connections close so that clients move to other pods.
	if !ready || r.Close {
		return true
	}
	if r.ProtoMinor == 0 {
		return !hasToken(strings.Join(r.Header["Connection"], ","), "keep-alive")
	}
	return false
}

// fitWire splits rem bytes into a body of at least minWireBody bytes, its
// Content-Length digits and a pad header (none when it can), and returns
// the pad header's value length.
func fitWire(rem int64) (body int64, pad int, ok bool) {
	if b, ok := bodyFor(rem); ok {
		return b, 0, true
	}
	// rem sits in a gap where Content-Length gains a digit; gaps are
	// isolated, so one of two pad lengths always fits when rem is large.
	for p := int64(padMinLen); p <= int64(padMinLen)+1; p++ {
		if b, ok := bodyFor(rem - p); ok {
			return b, int(p - int64(len(PadHeader+": \r\n"))), true
		}
	}
	return 0, 0, false
}

// bodyFor returns b with b + digits(b) == rem and b ≥ minWireBody.
func bodyFor(rem int64) (int64, bool) {
	for d := int64(1); d <= 19; d++ {
		b := rem - d
		if b >= minWireBody && digits(b) == d {
			return b, true
		}
	}
	return 0, false
}

// digits is the length of n in decimal.
func digits(n int64) int64 {
	return int64(len(strconv.FormatInt(n, 10)))
}

// hasToken reports whether the comma-separated header value v lists token.
func hasToken(v, token string) bool {
	for f := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.TrimSpace(f), token) {
			return true
		}
	}
	return false
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
