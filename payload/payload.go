// Package payload serves the sidecar's HTTP port: GET /heartbeat/{n} answers
// with exactly n bytes of a fixed pattern, plus /version, /healthz, /readyz
// and any routes mounted by the caller.
package payload

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Pattern is the repeating body content.
const Pattern = "0123456789ABCDEF"

// Route prefix of the payload endpoint; its templated form is RouteHeartbeat.
const (
	prefix         = "/heartbeat/"
	RouteHeartbeat = "/heartbeat/{size}"
)

// Defaults for Config.
const (
	DefaultMinSize      = 1
	DefaultMaxSize      = 1 << 20
	DefaultMaxUpload    = 1 << 30
	DefaultWriteTimeout = 30 * time.Second
	// bufSize is a multiple of len(Pattern), so every chunk starts in phase.
	bufSize = 256 << 10
)

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("invalid payload config")

// Config configures a Server.
type Config struct {
	MinSize   int64 // smallest n served
	MaxSize   int64 // largest n served
	MaxUpload int64 // largest request body accepted by POST/PUT
	// WriteTimeout is how long a client may take to accept each chunk of a large body.
	WriteTimeout time.Duration
	Version      string // answered by /version
	Host         string // sent in X-Heartbeat-Host
	// AccessLog receives one tab-delimited line per request; nil turns logging off.
	AccessLog io.Writer

	MeterProvider  metric.MeterProvider          // nil: no metrics
	TracerProvider trace.TracerProvider          // nil: no spans
	Propagator     propagation.TextMapPropagator // nil: incoming trace context is ignored
}

// Validate reports the first impossible setting.
func (c *Config) Validate() error {
	switch {
	case c.MinSize < 0:
		return fmt.Errorf("%w: min-size %d is negative", ErrInvalidConfig, c.MinSize)
	case c.MaxSize < c.MinSize:
		return fmt.Errorf("%w: max-size %d is below min-size %d", ErrInvalidConfig, c.MaxSize, c.MinSize)
	case c.MaxUpload < 0:
		return fmt.Errorf("%w: max-upload %d is negative", ErrInvalidConfig, c.MaxUpload)
	case c.WriteTimeout < 0:
		return fmt.Errorf("%w: write-timeout %s is negative", ErrInvalidConfig, c.WriteTimeout)
	case strings.ContainsAny(c.Host, "\r\n"):
		return fmt.Errorf("%w: host %q contains a line break", ErrInvalidConfig, c.Host)
	}
	return nil
}

// Server is the payload HTTP handler.
type Server struct {
	cfg    Config
	buf    []byte
	ready  atomic.Bool
	extra  map[string]http.Handler
	access *accessLog
	instr  *instruments
	mesh   *meshCounter
	cl     lengthCache
	timing timingCache
	date   dateCache

	hostHdr, textHdr, allowHdr, nosniff []string
}

// New builds a Server; it starts not ready (see SetReady).
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	buf := make([]byte, bufSize)
	for i := range buf {
		buf[i] = Pattern[i%len(Pattern)]
	}
	instr, err := newInstruments(cfg.MeterProvider, cfg.TracerProvider, cfg.Propagator)
	if err != nil {
		return nil, err
	}
	mesh, err := newMeshCounter(instr.meter, instr.metricsOn)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		buf:      buf,
		extra:    map[string]http.Handler{},
		instr:    instr,
		mesh:     mesh,
		hostHdr:  []string{cfg.Host},
		textHdr:  []string{"text/plain; charset=utf-8"},
		allowHdr: []string{"GET, HEAD, POST, PUT"},
		nosniff:  []string{"nosniff"},
	}
	if cfg.AccessLog != nil {
		s.access = newAccessLog(cfg.AccessLog)
	}
	return s, nil
}

// Handle mounts h at the exact path, with the built-in routes' headers, logging and telemetry.
func (s *Server) Handle(path string, h http.Handler) {
	// Not locked: ServeHTTP reads the map unguarded, so mounts happen before serving.
	s.extra[path] = h
}

// SetReady flips /readyz: true once the listeners are up, false while draining.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Close flushes the access log.
func (s *Server) Close() error {
	if s.access != nil {
		return s.access.Close()
	}
	return nil
}

// ServeHTTP answers the payload, health, version and mounted routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Routed by hand: a fixed prefix check is cheaper than a pattern mux on
	// the path every probe takes.
	start := time.Now()
	h := w.Header()
	h["X-Heartbeat-Host"] = s.hostHdr
	h["Date"] = s.date.get(start)

	path := r.URL.Path
	route := s.routeOf(path)
	ctx, span := s.instr.startSpan(r, route)
	var rec record
	switch route {
	case routeHeartbeat:
		rec = s.serveHeartbeat(w, r, path[len(prefix):], start)
	case routeWire:
		rec = s.serveWire(w, r, path[len(wirePrefix):], start)
	case routeVersion:
		rec = s.serveText(w, r, http.StatusOK, s.cfg.Version, start)
	case routeHealthz:
		rec = s.serveText(w, r, http.StatusOK, "ok", start)
	case routeReadyz:
		if s.ready.Load() {
			rec = s.serveText(w, r, http.StatusOK, "ready", start)
		} else {
			rec = s.serveText(w, r, http.StatusServiceUnavailable, "not ready", start)
		}
	case routeExtra:
		rec = s.serveExtra(w, r.WithContext(ctx), s.extra[path], start)
	default:
		rec = s.serveText(w, r, http.StatusNotFound, "not found", start)
	}
	s.instr.record(ctx, span, r, route, path, rec, start)
	s.mesh.count(ctx, r)
	if s.access != nil {
		s.access.write(start, r, rec)
	}
}

// record is what a route wrote, for logs and metrics.
type record struct {
	status       int
	written      int64
	requestBytes int64
}

// serveHeartbeat answers /heartbeat/{n}.
func (s *Server) serveHeartbeat(w http.ResponseWriter, r *http.Request, arg string, start time.Time) record {
	rec, recv, done := s.takeBody(w, r, start)
	if done {
		return rec
	}
	n, err := ParseSize(arg, s.cfg.MinSize, s.cfg.MaxSize)
	if err != nil {
		out := s.serveText(w, r, http.StatusBadRequest, err.Error(), start)
		out.requestBytes = rec.requestBytes
		return out
	}
	h := w.Header()
	h["Content-Type"] = s.textHdr
	h["X-Content-Type-Options"] = s.nosniff
	h["Content-Length"] = s.cl.get(n)
	h["Server-Timing"] = s.serverTiming(time.Since(start), recv)
	w.WriteHeader(http.StatusOK)
	rec.status = http.StatusOK
	if r.Method == http.MethodHead {
		return rec
	}
	rec.written = s.writeBody(w, r, n)
	return rec
}

// unguardedMax is the largest HTTP/1 body written without a deadline: it fits
// the socket's send buffer, so a client that stops reading cannot block it.
// HTTP/2 bodies always get one: a stalled flow-control window blocks any size.
const unguardedMax = 64 << 10

// writeBody streams n bytes from the shared buffer; memory does not grow with n.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, n int64) int64 {
	if n <= unguardedMax && r.ProtoMajor == 1 {
		nw, _ := w.Write(s.buf[:n])
		return int64(nw)
	}
	// A client that stops reading must not hold the handler forever, but a
	// slow one that keeps reading may take as long as it needs.
	rc := http.NewResponseController(w)
	var total int64
	for total < n {
		chunk := min(n-total, int64(len(s.buf)))
		_ = rc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
		nw, err := w.Write(s.buf[:chunk])
		total += int64(nw)
		if err != nil {
			break
		}
	}
	_ = rc.SetWriteDeadline(time.Time{})
	return total
}

// discardBody reads and drops the request body and times its arrival;
// status is non-zero, and msg says why, when the body is too large, too
// slow or cut short.
func (s *Server) discardBody(w http.ResponseWriter, r *http.Request) (n int64, recv time.Duration, status int, msg string) {
	tooLargeMsg := "request body larger than max-upload " + strconv.FormatInt(s.cfg.MaxUpload, 10) + " bytes"
	if r.ContentLength > s.cfg.MaxUpload {
		return 0, 0, http.StatusRequestEntityTooLarge, tooLargeMsg
	}
	timer := &recvTimer{ReadCloser: r.Body}
	body := http.MaxBytesReader(w, timer, s.cfg.MaxUpload)
	// A client that stops sending must not hold the handler forever: as for
	// responses, each chunk must arrive within WriteTimeout.
	rc := http.NewResponseController(w)
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()
	for {
		_ = rc.SetReadDeadline(time.Now().Add(s.cfg.WriteTimeout))
		m, err := io.CopyN(io.Discard, body, bufSize)
		n += m
		var (
			tooLarge *http.MaxBytesError
			netErr   net.Error
		)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return n, timer.elapsed(), 0, ""
		case errors.As(err, &tooLarge):
			return n, 0, http.StatusRequestEntityTooLarge, tooLargeMsg
		case errors.As(err, &netErr) && netErr.Timeout():
			return n, 0, http.StatusRequestTimeout, "request body not sent within write-timeout " + s.cfg.WriteTimeout.String()
		default:
			return n, 0, http.StatusBadRequest, "request body cut short"
		}
	}
}

// serveText writes a one-line plain-text answer.
func (s *Server) serveText(w http.ResponseWriter, r *http.Request, status int, msg string, start time.Time) record {
	h := w.Header()
	h["Content-Type"] = s.textHdr
	h["X-Content-Type-Options"] = s.nosniff
	h["Content-Length"] = s.cl.get(int64(len(msg) + 1))
	h["Server-Timing"] = s.timing.get(time.Since(start))
	if status >= http.StatusBadRequest {
		h["Cache-Control"] = []string{"no-store"}
	}
	w.WriteHeader(status)
	rec := record{status: status}
	if r.Method != http.MethodHead {
		n, _ := io.WriteString(w, msg+"\n")
		rec.written = int64(n)
	}
	return rec
}

// serveExtra runs a mounted handler, capturing what it wrote.
func (s *Server) serveExtra(w http.ResponseWriter, r *http.Request, h http.Handler, start time.Time) record {
	cw := &captureWriter{ResponseWriter: w, start: start, timing: &s.timing}
	h.ServeHTTP(cw, r)
	if cw.status == 0 {
		// Nothing written: answer 200 here, so Server-Timing goes out too.
		cw.WriteHeader(http.StatusOK)
	}
	return record{status: cw.status, written: cw.written}
}

// captureWriter records the status and size of a mounted handler's answer
// and adds Server-Timing as its header goes out.
type captureWriter struct {
	http.ResponseWriter
	start   time.Time
	timing  *timingCache
	status  int
	written int64
}

func (c *captureWriter) WriteHeader(code int) {
	if c.status == 0 {
		c.status = code
		c.Header()["Server-Timing"] = c.timing.get(time.Since(c.start))
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.WriteHeader(http.StatusOK)
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *captureWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// lengthCache interns Content-Length values: probes ask for a handful of
// sizes, and a hit costs no allocation. Direct-mapped, so it stays bounded.
type lengthCache struct {
	slots [256]atomic.Pointer[lengthEntry]
}

type lengthEntry struct {
	n int64
	v []string
}

func (c *lengthCache) get(n int64) []string {
	slot := &c.slots[uint64(n)%uint64(len(c.slots))]
	if e := slot.Load(); e != nil && e.n == n {
		return e.v
	}
	e := &lengthEntry{n: n, v: []string{strconv.FormatInt(n, 10)}}
	slot.Store(e)
	return e.v
}

// timingCache interns Server-Timing values at microsecond resolution; fast
// answers take a few microseconds, so nearly every lookup hits.
type timingCache struct {
	slots [1024]atomic.Pointer[timingEntry]
}

type timingEntry struct {
	us int64
	v  []string
}

func (c *timingCache) get(d time.Duration) []string {
	us := d.Microseconds()
	slot := &c.slots[uint64(us)%uint64(len(c.slots))]
	if e := slot.Load(); e != nil && e.us == us {
		return e.v
	}
	// dur is in milliseconds, per the Server-Timing spec.
	ms := strconv.FormatFloat(float64(us)/1000, 'f', 3, 64)
	e := &timingEntry{us: us, v: []string{"app;dur=" + ms}}
	slot.Store(e)
	return e.v
}

// dateCache holds the Date header of the current second. net/http formats
// one per response, about 1.5 % of the server's CPU at 1 KiB; like nginx,
// which also keeps its Date string per second, this formats one per second
// from the time the handler already read.
type dateCache struct {
	cur atomic.Pointer[dateEntry]
}

type dateEntry struct {
	sec int64
	v   []string
}

// get returns t's Date. A request of the second before may store its entry
// after a newer one; the next caller then formats again, so every answer
// still carries its own second.
func (c *dateCache) get(t time.Time) []string {
	sec := t.Unix()
	if e := c.cur.Load(); e != nil && e.sec == sec {
		return e.v
	}
	e := &dateEntry{sec: sec, v: []string{t.UTC().Format(http.TimeFormat)}}
	c.cur.Store(e)
	return e.v
}

// accessLog buffers lines so that --log costs a memory copy per request, not
// a write syscall; a background flush bounds how stale the output gets.
type accessLog struct {
	mu   sync.Mutex
	out  io.Writer
	buf  []byte
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

const (
	accessLogFlushEvery = 200 * time.Millisecond
	accessLogMaxBuffer  = 64 << 10
)

func newAccessLog(out io.Writer) *accessLog {
	l := &accessLog{out: out, buf: make([]byte, 0, accessLogMaxBuffer), done: make(chan struct{})}
	l.wg.Add(1)
	go l.flushLoop()
	return l
}

func (l *accessLog) flushLoop() {
	defer l.wg.Done()
	t := time.NewTicker(accessLogFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			l.flushLocked()
			l.mu.Unlock()
		case <-l.done:
			return
		}
	}
}

func (l *accessLog) flushLocked() {
	if len(l.buf) == 0 {
		return
	}
	_, _ = l.out.Write(l.buf)
	l.buf = l.buf[:0]
}

// write appends: time, remote address, method, path, status, bytes, microseconds.
func (l *accessLog) write(start time.Time, r *http.Request, rec record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := start.UTC().AppendFormat(l.buf, time.RFC3339)
	b = append(b, '\t')
	b = append(b, r.RemoteAddr...)
	b = append(b, '\t')
	b = append(b, r.Method...)
	b = append(b, '\t')
	b = appendClean(b, r.URL.Path)
	b = append(b, '\t')
	b = strconv.AppendInt(b, int64(rec.status), 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, rec.written, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, time.Since(start).Microseconds(), 10)
	b = append(b, '\n')
	l.buf = b
	if len(l.buf) >= accessLogMaxBuffer {
		l.flushLocked()
	}
}

// appendClean keeps a client-chosen path from forging log fields or lines.
func appendClean(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			const hex = "0123456789abcdef"
			b = append(b, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		b = append(b, c)
	}
	return b
}

// Close stops the flusher and writes what is buffered; later calls do nothing.
func (l *accessLog) Close() error {
	l.once.Do(func() { close(l.done) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	return nil
}
