package syslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	otellog "go.opentelemetry.io/otel/log"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ErrBadSyslogAddr reports a --syslog-addr New cannot use.
var ErrBadSyslogAddr = errors.New("invalid syslog address")

// DefaultAlertQueue is how many alerts wait for an unreachable syslog before
// new ones are dropped (and counted in heartbeat.alerts.dropped).
const DefaultAlertQueue = 1000

// Syslog priorities, as log/syslog defines them. Alerts use the user
// facility: a down check is <9> (user.alert), a recovery <13> (user.notice).
const (
	sevAlert      = 1
	sevNotice     = 5
	facilityUser  = 1 << 3
	syslogTag     = "heartbeat"
	dialTimeout   = 5 * time.Second
	writeTimeout  = 5 * time.Second
	flushDeadline = 2 * time.Second
)

// localSyslogPaths are where log/syslog looks for the local daemon.
var localSyslogPaths = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// SyslogConfig says where transition alerts are written.
type SyslogConfig struct {
	// Addr is "" for the local daemon (/dev/log), "none" to write no
	// syslog, or udp://host:port, tcp://host:port or unix:///path.
	Addr string
	// QueueSize bounds alerts waiting for syslog; 0 means DefaultAlertQueue.
	QueueSize int

	// Retry backoff bounds; tests shorten them.
	retryMin, retryMax time.Duration
}

// Validate reports an address New cannot use.
func (c *SyslogConfig) Validate() error {
	if c.QueueSize < 0 {
		return fmt.Errorf("%w: queue size %d must not be negative", ErrInvalidSettings, c.QueueSize)
	}
	_, err := parseSyslogAddr(c.Addr)
	return err
}

// syslogDest is a parsed SyslogConfig.Addr.
type syslogDest struct {
	network string   // "udp" or "tcp"; "" for unix sockets
	addr    string   // host:port for udp and tcp
	paths   []string // unix socket paths to try, in order
}

func parseSyslogAddr(s string) (*syslogDest, error) {
	switch s {
	case "":
		return &syslogDest{paths: localSyslogPaths}, nil
	case "none":
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadSyslogAddr, s, err)
	}
	switch u.Scheme {
	case "udp", "tcp":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" || u.Path != "" {
			return nil, fmt.Errorf("%w %q: want %s://host:port", ErrBadSyslogAddr, s, u.Scheme)
		}
		return &syslogDest{network: u.Scheme, addr: u.Host}, nil
	case "unix":
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("%w %q: want unix:///path/to/socket", ErrBadSyslogAddr, s)
		}
		return &syslogDest{paths: []string{u.Path}}, nil
	default:
		return nil, fmt.Errorf("%w %q: scheme must be udp, tcp or unix (or the address \"none\")", ErrBadSyslogAddr, s)
	}
}

func (d *syslogDest) String() string {
	if d.network != "" {
		return d.network + "://" + d.addr
	}
	return "unix://" + strings.Join(d.paths, ",")
}

type alertMsg struct {
	severity int
	text     string
	at       time.Time
}

// alertSink writes alerts to syslog from one goroutine, so a slow or absent
// syslog never holds up a check: alerts wait in a bounded queue while the
// sink redials with backoff, and are dropped (and counted) once it is full.
// It formats like log/syslog but, unlike it, dials and writes with
// deadlines, so a black-holed TCP syslog cannot hang shutdown.
type alertSink struct {
	dest               *syslogDest
	hostname           string
	pid                int
	queue              chan alertMsg
	log                *slog.Logger
	onDrop             func(context.Context)
	dropping           atomic.Bool // a drop was logged and syslog has not recovered since
	retryMin, retryMax time.Duration
}

func newAlertSink(c SyslogConfig, log *slog.Logger, onDrop func(context.Context)) (*alertSink, error) {
	dest, err := parseSyslogAddr(c.Addr)
	if err != nil || dest == nil {
		return nil, err
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	q := c.QueueSize
	if q == 0 {
		q = DefaultAlertQueue
	}
	s := &alertSink{
		dest: dest, hostname: host, pid: os.Getpid(), queue: make(chan alertMsg, q),
		log: log, onDrop: onDrop, retryMin: c.retryMin, retryMax: c.retryMax,
	}
	if s.retryMin <= 0 {
		s.retryMin = time.Second
	}
	if s.retryMax <= 0 {
		s.retryMax = time.Minute
	}
	return s, nil
}

// enqueue never blocks: a full queue drops the alert.
func (s *alertSink) enqueue(ctx context.Context, m alertMsg) {
	select {
	case s.queue <- m:
	default:
		s.onDrop(ctx)
		if !s.dropping.Swap(true) {
			s.log.ErrorContext(ctx, "syslog alert queue full; dropping alerts until syslog is reachable",
				"syslog", s.dest.String(), "queue", cap(s.queue))
		}
	}
}

// run delivers queued alerts in order until ctx is done, then flushes what
// it can within flushDeadline.
func (s *alertSink) run(ctx context.Context) {
	var (
		conn    net.Conn
		local   bool
		backoff = s.retryMin
		outage  bool
	)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	fail := func(err error) {
		if !outage {
			outage = true
			s.log.WarnContext(ctx, "syslog unreachable; alerts are queued and retried", "syslog", s.dest.String(), "err", err)
		}
	}
	for {
		var m alertMsg
		select {
		case <-ctx.Done():
			s.flush(conn, local, nil)
			return
		case m = <-s.queue:
		}
		for attempt := 0; ; attempt++ {
			// The first failure is retried at once: a daemon restart leaves a
			// stale socket that a fresh dial fixes. Later ones back off.
			if attempt > 1 {
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					s.flush(conn, local, &m)
					return
				case <-t.C:
				}
				backoff = min(2*backoff, s.retryMax)
			}
			if conn != nil && peerClosed(conn) {
				conn.Close()
				conn = nil
			}
			if conn == nil {
				var err error
				if conn, local, err = s.dial(ctx); err != nil {
					fail(err)
					continue
				}
			}
			if err := s.write(conn, local, m); err != nil {
				conn.Close()
				conn = nil
				fail(err)
				continue
			}
			break
		}
		if outage {
			outage = false
			s.log.InfoContext(ctx, "syslog reachable again", "syslog", s.dest.String())
		}
		backoff = s.retryMin
		s.dropping.Store(false)
	}
}

// flush makes one quick attempt at what is still queued (first, the alert
// in hand) so alerts raised just before shutdown are not lost.
func (s *alertSink) flush(conn net.Conn, local bool, first *alertMsg) {
	ctx, cancel := context.WithTimeout(context.Background(), flushDeadline)
	defer cancel()
	var pending []alertMsg
	if first != nil {
		pending = append(pending, *first)
	}
	for {
		select {
		case m := <-s.queue:
			pending = append(pending, m)
			continue
		default:
		}
		break
	}
	if len(pending) == 0 {
		return
	}
	if conn == nil {
		var err error
		if conn, local, err = s.dial(ctx); err != nil {
			s.log.Warn("syslog unreachable at shutdown; alerts lost", "alerts", len(pending), "err", err)
			return
		}
		defer conn.Close()
	}
	for i, m := range pending {
		if err := s.write(conn, local, m); err != nil {
			s.log.Warn("syslog write failed at shutdown; alerts lost", "alerts", len(pending)-i, "err", err)
			return
		}
	}
}

// dial connects to the destination; for unix sockets it tries datagram then
// stream on each path, as log/syslog does.
func (s *alertSink) dial(ctx context.Context) (net.Conn, bool, error) {
	d := net.Dialer{Timeout: dialTimeout}
	if s.dest.network != "" {
		c, err := d.DialContext(ctx, s.dest.network, s.dest.addr)
		return c, false, err
	}
	var errs []error
	for _, p := range s.dest.paths {
		for _, network := range []string{"unixgram", "unix"} {
			c, err := d.DialContext(ctx, network, p)
			if err == nil {
				return c, true, nil
			}
			errs = append(errs, err)
		}
	}
	return nil, true, fmt.Errorf("no syslog socket: %w", errors.Join(errs...))
}

// peerClosed reports whether the daemon hung up a stream connection. A
// write to a connection the peer closed still succeeds (the loss shows only
// on the next one), so a stream is checked before each alert; syslog daemons
// never send, so any read result but a timeout means the connection is gone.
// Datagram sockets report their errors on write instead.
func peerClosed(c net.Conn) bool {
	switch c.(type) {
	case *net.UDPConn:
		return false
	case *net.UnixConn:
		if ra := c.RemoteAddr(); ra != nil && ra.Network() == "unixgram" {
			return false
		}
	}
	// A deadline already past would fail before looking at the socket.
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return true
	}
	var b [1]byte
	_, err := c.Read(b[:])
	_ = c.SetReadDeadline(time.Time{})
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// write sends one message in log/syslog's format: the local form (no
// hostname, RFC 3164 time stamp) on unix sockets, the network form
// (RFC 3339 time stamp and hostname) otherwise, newline-terminated.
func (s *alertSink) write(c net.Conn, local bool, m alertMsg) error {
	pri := facilityUser | m.severity
	var line string
	if local {
		line = fmt.Sprintf("<%d>%s %s[%d]: %s\n", pri, m.at.Format(time.Stamp), syslogTag, s.pid, m.text)
	} else {
		line = fmt.Sprintf("<%d>%s %s %s[%d]: %s\n", pri, m.at.Format(time.RFC3339), s.hostname, syslogTag, s.pid, m.text)
	}
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := c.Write([]byte(line))
	return err
}

// alert reports a transition of s: one syslog line, one OTel log record and
// one slog line, all with the same text and the run's trace id.
func (r *Runner) alert(ctx context.Context, s *series, tr transition, res Result, prev, st seriesState) {
	c := s.chk
	now := time.Now()
	sc := trace.SpanContextFromContext(ctx)
	var b strings.Builder
	kv := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(logfmtValue(v))
	}
	var (
		severity  int
		otelSev   otellog.Severity
		sevText   string
		slogLevel slog.Level
	)
	if tr == wentDown {
		severity, otelSev, sevText, slogLevel = sevAlert, otellog.SeverityError3, "ALERT", slog.LevelError
	} else {
		severity, otelSev, sevText, slogLevel = sevNotice, otellog.SeverityInfo2, "NOTICE", slog.LevelInfo
	}
	b.WriteString(sevText)
	kv("check", c.cfg.Name)
	kv("target", c.display)
	if s.address != "" {
		kv("address", s.address)
	}
	if tr == wentDown {
		kv("state", "down")
		kv("reason", st.LastErr)
		kv("error.type", res.ErrorType)
		kv("failures", strconv.Itoa(st.ConsecFail))
	} else {
		kv("state", "up")
		kv("successes", strconv.Itoa(st.ConsecOK))
		if !prev.Since.IsZero() {
			kv("down_for", now.Sub(prev.Since).Round(time.Millisecond).String())
		}
	}
	if sc.HasTraceID() {
		kv("trace_id", sc.TraceID().String())
	}
	text := b.String()

	if r.alerts != nil {
		r.alerts.enqueue(ctx, alertMsg{severity: severity, text: text, at: now})
	}
	r.log.Log(ctx, slogLevel, text, "check", c.cfg.Name)

	var rec otellog.Record
	rec.SetTimestamp(now)
	rec.SetSeverity(otelSev)
	rec.SetSeverityText(sevText)
	rec.SetBody(attribute.StringValue(text))
	if tr == wentDown {
		rec.SetEventName("heartbeat.check.down")
	} else {
		rec.SetEventName("heartbeat.check.up")
	}
	attrs := append(s.base.ToSlice(), attribute.String("check.target", c.display))
	if tr == wentDown {
		attrs = append(attrs, semconv.ErrorTypeKey.String(res.ErrorType))
	}
	rec.AddAttributes(attrs...)
	// ctx carries the run's span, so the record links to the failing run's trace.
	r.logger.Emit(ctx, rec)
}

// logfmtValue quotes v when it would not read back as one logfmt value.
func logfmtValue(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\r\n\"=\\") || !strconv.CanBackquote(v) {
		return strconv.Quote(v)
	}
	return v
}
