package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// Directions of a Transfer, as network.io.direction names them.
const (
	DirectionReceive  = "receive"  // download
	DirectionTransmit = "transmit" // upload
)

// serverTimingRecv is the Server-Timing metric in which a heartbeat payload
// server reports how long an upload's body took to arrive.
const serverTimingRecv = "recv"

// Transfer is what one direction of a throughput run moved, and how long
// the moving alone took (no DNS, connect or TLS).
type Transfer struct {
	Direction string // DirectionReceive or DirectionTransmit
	Bytes     int64
	Duration  time.Duration
	Requests  int
	// ServerTimed is true when every upload duration came from the peer's recv timing.
	ServerTimed bool
}

// BitsPerSecond is the transfer's rate; 0 when nothing was timed.
func (t Transfer) BitsPerSecond() float64 {
	if t.Duration <= 0 {
		return 0
	}
	return float64(t.Bytes) * 8 / t.Duration.Seconds()
}

// peerBounds finds the size bounds in a payload server's 400 answer
// ("size out of range: 2000000 is not in [1, 1048576]").
var peerBounds = regexp.MustCompile(`not in \[(\d+), (\d+)\]`)

// probeThroughput downloads and uploads the configured bytes over one
// connection to a heartbeat payload server, in several requests when the
// peer's --max-size is smaller than the run.
func probeThroughput(ctx context.Context, t Target) Result {
	prefix := t.Check.DisplayTarget() + ": "
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		msg, err := doThroughput(ctx, t, res, rec)
		return prefix + msg, err
	}, func(reason string) string { return prefix + reason })
}

func doThroughput(ctx context.Context, t Target, res *Result, rec *recorder) (string, error) {
	o := &t.Check.Throughput
	if o.URL == nil {
		return "", failf(ErrOther, "empty URL")
	}
	conn, state, err := connect(ctx, t, dialAddress(t), rec)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	stop := withConnDeadline(ctx, conn)
	defer stop()
	if err := checkCert(res, state, t.Check.TLS.MinDaysLeft); err != nil {
		return "", err
	}
	rec.start(PhaseTransfer)
	s := newSession(ctx, t, conn)
	var parts []string
	for _, dir := range []struct {
		on  bool
		run func(int64) (Transfer, error)
	}{{o.Download(), s.download}, {o.Upload(), s.upload}} {
		if !dir.on {
			continue
		}
		tr, err := dir.run(o.Bytes)
		if tr.Requests > 0 || tr.Bytes > 0 {
			res.Transfers = append(res.Transfers, tr)
		}
		if err != nil {
			return "", transferError(err, tr, o.Bytes, time.Since(res.Start))
		}
		parts = append(parts, describe(tr))
	}
	rec.end(PhaseTransfer)
	for _, tr := range res.Transfers {
		if bps := tr.BitsPerSecond(); bps < o.MinBitsPerSecond {
			return "", failf(ErrThroughputLow, "%s %s below min_bits_per_second %s", verb(tr.Direction), formatBits(bps), formatBits(o.MinBitsPerSecond))
		}
	}
	return strings.Join(parts, ", "), nil
}

// transferError keeps a timeout apart from other failures and says how far
// the transfer got, so a slow link shows as slow and not just as failed.
func transferError(err error, tr Transfer, want int64, elapsed time.Duration) error {
	if pe := (*probeError)(nil); errors.As(err, &pe) {
		return err
	}
	moved := fmt.Sprintf("%d of %d bytes %s in %v (%s)", tr.Bytes, want, map[string]string{DirectionReceive: "received", DirectionTransmit: "sent"}[tr.Direction],
		tr.Duration.Round(time.Millisecond), formatBits(tr.BitsPerSecond()))
	if isTimeout(err) {
		return failf(ErrTransferTimeout, "timed out after %v during %s: %s", elapsed.Round(time.Millisecond), verb(tr.Direction), moved)
	}
	return fmt.Errorf("%s: %w (%s)", verb(tr.Direction), err, moved)
}

func verb(direction string) string {
	if direction == DirectionTransmit {
		return "upload"
	}
	return "download"
}

func describe(tr Transfer) string {
	how := ""
	if tr.Direction == DirectionTransmit && !tr.ServerTimed {
		how = ", timed by the client: the peer sent no recv timing"
	}
	return fmt.Sprintf("%s %s (%d bytes in %v%s)", verb(tr.Direction), formatBits(tr.BitsPerSecond()), tr.Bytes, tr.Duration.Round(time.Microsecond), how)
}

// formatBits writes a rate in Mbit/s, the unit link speeds are quoted in.
func formatBits(bps float64) string {
	return strconv.FormatFloat(bps/1e6, 'f', 2, 64) + " Mbit/s"
}

// session is one connection's sequence of requests.
type session struct {
	ctx  context.Context
	t    Target
	conn net.Conn
	in   *timedReader
	br   *bufio.Reader
	// chunk is the largest body one request asks for; a peer whose
	// --max-size is smaller says so in its 400, and chunk shrinks to it.
	chunk int64
}

func newSession(ctx context.Context, t Target, conn net.Conn) *session {
	in := &timedReader{r: conn}
	return &session{ctx: ctx, t: t, conn: conn, in: in, br: bufio.NewReaderSize(in, 64<<10), chunk: config.MaxThroughputBytes}
}

// next is the size of the next request for rem bytes: rem split evenly
// into as few requests as chunk allows, so no request is a tiny tail too
// short to time.
func (s *session) next(rem int64) int64 {
	k := (rem + s.chunk - 1) / s.chunk
	return (rem + k - 1) / k
}

// request builds one request to the payload route for size n.
func (s *session) request(method string, n int64, body io.Reader, length int64) *http.Request {
	u := *s.t.Check.Throughput.URL
	u.Path = strings.TrimSuffix(u.Path, "/") + "/heartbeat/" + strconv.FormatInt(n, 10)
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	req := &http.Request{Method: method, URL: &u, Host: u.Host, Header: http.Header{}, Body: io.NopCloser(body), ContentLength: length,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
	if body == nil {
		req.Body = nil
	}
	req.Header.Set("User-Agent", userAgent)
	if s.t.Propagator != nil {
		s.t.Propagator.Inject(s.ctx, propagation.HeaderCarrier(req.Header))
	}
	return req.WithContext(s.ctx)
}

// download fetches total bytes of /heartbeat/{n}; each request's time runs
// from its answer's first byte to its last.
func (s *session) download(total int64) (Transfer, error) {
	tr := Transfer{Direction: DirectionReceive}
	for tr.Bytes < total {
		n := s.next(total - tr.Bytes)
		req := s.request(http.MethodGet, n, nil, 0)
		if err := req.Write(s.conn); err != nil {
			return tr, err
		}
		s.in.reset()
		resp, err := http.ReadResponse(s.br, req)
		if err != nil {
			return tr, err
		}
		if retry, err := s.shrink(resp, n); retry || err != nil {
			if err != nil {
				return tr, err
			}
			continue
		}
		m, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.Bytes += m
		tr.Duration += s.in.span()
		tr.Requests++
		if err != nil {
			return tr, err
		}
		if m != n {
			return tr, failf(ErrOther, "peer sent %d of %d bytes", m, n)
		}
		if resp.Close && tr.Bytes < total {
			return tr, failf(ErrOther, "peer closed the connection after %d bytes", tr.Bytes)
		}
	}
	return tr, nil
}

// shrink handles an answer other than 200: a 400 naming the peer's bounds
// makes later requests fit them (retry is true); anything else fails.
func (s *session) shrink(resp *http.Response, n int64) (retry bool, err error) {
	if resp.StatusCode == http.StatusOK {
		return false, nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode == http.StatusBadRequest {
		if m := peerBounds.FindSubmatch(body); m != nil {
			if peerMax, err := strconv.ParseInt(string(m[2]), 10, 64); err == nil && peerMax > 0 && peerMax < n && !resp.Close {
				s.chunk = peerMax
				return true, nil
			}
		}
	}
	return false, failf(ErrStatusCode, "status code %d for %d bytes: %s", resp.StatusCode, n, strings.TrimSpace(printableText(body)))
}

// upload POSTs total bytes to /heartbeat/1 in requests of at most chunk
// bytes. Each request's time is the peer's recv timing (first body byte to
// last, as it received them); without one, the client's time from sending
// the body to the answer's first byte, which socket buffers skew.
func (s *session) upload(total int64) (Transfer, error) {
	tr := Transfer{Direction: DirectionTransmit, ServerTimed: true}
	for tr.Bytes < total {
		n := s.next(total - tr.Bytes)
		body := &patternReader{left: n}
		req := s.request(http.MethodPost, 1, body, n)
		start := time.Now()
		s.in.reset()
		err := req.Write(s.conn)
		if err != nil {
			tr.Bytes += body.read
			tr.Duration += time.Since(start)
			return tr, err
		}
		resp, err := http.ReadResponse(s.br, req)
		if err != nil {
			tr.Bytes += n
			tr.Duration += time.Since(start)
			return tr, err
		}
		clientTime := s.in.firstAt().Sub(start)
		if _, err := s.shrink(resp, n); err != nil {
			return tr, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		d, ok := serverTimingMetric(strings.Join(resp.Header.Values("Server-Timing"), ", "), serverTimingRecv)
		if !ok || d <= 0 {
			d, tr.ServerTimed = clientTime, false
		}
		tr.Bytes += n
		tr.Duration += d
		tr.Requests++
		if err != nil {
			return tr, err
		}
		if resp.Close && tr.Bytes < total {
			return tr, failf(ErrOther, "peer closed the connection after %d bytes", tr.Bytes)
		}
	}
	return tr, nil
}

// serverTimingMetric returns the dur of the first metric called name in a
// Server-Timing header value.
func serverTimingMetric(header, name string) (time.Duration, bool) {
	for _, metric := range splitUnquoted(header, ',') {
		params := splitUnquoted(metric, ';')
		if strings.EqualFold(strings.TrimSpace(params[0]), name) {
			return metricDur(params[1:])
		}
	}
	return 0, false
}

// printableText keeps a peer's error text safe for a reason line.
func printableText(b []byte) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b))
}

// timedReader notes when reads after the last reset first and last returned data.
type timedReader struct {
	r           io.Reader
	first, last time.Time
}

func (t *timedReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		now := time.Now()
		if t.first.IsZero() {
			t.first = now
		}
		t.last = now
	}
	return n, err
}

func (t *timedReader) reset() { t.first, t.last = time.Time{}, time.Time{} }

// span is first to last byte since the reset.
func (t *timedReader) span() time.Duration { return t.last.Sub(t.first) }

// firstAt is when the first byte since the reset arrived (now if none did).
func (t *timedReader) firstAt() time.Time {
	if t.first.IsZero() {
		return time.Now()
	}
	return t.first
}

// patternReader yields left bytes of the payload pattern and counts them.
type patternReader struct {
	left, read int64
}

const uploadPattern = "0123456789ABCDEF"

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(b)), p.left))
	for i := 0; i < n; {
		i += copy(b[i:n], uploadPattern)
	}
	p.left -= int64(n)
	p.read += int64(n)
	return n, nil
}
