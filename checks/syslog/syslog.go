// Package syslog is the client that writes transition alerts to a syslog
// daemon: one goroutine, a bounded queue, redials with backoff, and dials and
// writes with deadlines, so a slow, absent or black-holed syslog never holds
// up a check or shutdown.
package syslog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

// Errors returned by Config.Validate and New.
var (
	ErrBadAddr      = errors.New("invalid syslog address")
	ErrBadQueueSize = errors.New("invalid syslog queue size")
)

// DefaultQueueSize is how many messages may wait for an unreachable syslog before new ones are dropped.
const DefaultQueueSize = 1000

// Severity is a syslog severity, sent with the user facility: Alert is <9>, Notice <13>.
type Severity int

// Severities, as log/syslog numbers them.
const (
	Alert  Severity = 1
	Notice Severity = 5
)

const (
	facilityUser  = 1 << 3
	tag           = "heartbeat"
	dialTimeout   = 5 * time.Second
	writeTimeout  = 5 * time.Second
	flushDeadline = 2 * time.Second
)

// localPaths are where log/syslog looks for the local daemon.
var localPaths = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// Config says where messages are written.
type Config struct {
	// Addr is "" (/dev/log), "none" (no syslog), udp://host:port, tcp://host:port or unix:///path.
	Addr string
	// QueueSize bounds messages waiting for syslog; 0 means DefaultQueueSize.
	QueueSize int
	// RetryMin and RetryMax bound the redial backoff; 0 means 1s and 1m.
	RetryMin, RetryMax time.Duration
}

// Validate reports a configuration New cannot use.
func (c *Config) Validate() error {
	if c.QueueSize < 0 {
		return fmt.Errorf("%w: %d must not be negative", ErrBadQueueSize, c.QueueSize)
	}
	_, err := parseAddr(c.Addr)
	return err
}

// dest is a parsed Config.Addr.
type dest struct {
	network string   // "udp" or "tcp"; "" for unix sockets
	addr    string   // host:port for udp and tcp
	paths   []string // unix socket paths to try, in order
}

func parseAddr(s string) (*dest, error) {
	switch s {
	case "":
		return &dest{paths: localPaths}, nil
	case "none":
		return nil, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrBadAddr, s, err)
	}
	switch u.Scheme {
	case "udp", "tcp":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" || u.Path != "" {
			return nil, fmt.Errorf("%w %q: want %s://host:port", ErrBadAddr, s, u.Scheme)
		}
		return &dest{network: u.Scheme, addr: u.Host}, nil
	case "unix":
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("%w %q: want unix:///path/to/socket", ErrBadAddr, s)
		}
		return &dest{paths: []string{u.Path}}, nil
	default:
		return nil, fmt.Errorf("%w %q: scheme must be udp, tcp or unix (or the address \"none\")", ErrBadAddr, s)
	}
}

func (d *dest) String() string {
	if d.network != "" {
		return d.network + "://" + d.addr
	}
	return "unix://" + strings.Join(d.paths, ",")
}

type message struct {
	severity Severity
	text     string
	at       time.Time
}

// Client writes messages to syslog from one goroutine, Run, through a bounded queue.
//
// Messages wait in the queue while Run redials with backoff, and are
// dropped (and counted through onDrop) once it is full. Lines are formatted
// like log/syslog's but, unlike it, dials and writes have deadlines.
type Client struct {
	dest               *dest
	hostname           string
	pid                int
	queue              chan message
	log                *slog.Logger
	onDrop             func(context.Context)
	dropping           atomic.Bool // a drop was logged and syslog has not recovered since
	retryMin, retryMax time.Duration
}

// New returns a client for c (nil when c.Addr is "none"); log hears of outages, onDrop of each dropped message.
func New(c Config, log *slog.Logger, onDrop func(context.Context)) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	d, _ := parseAddr(c.Addr)
	if d == nil {
		return nil, nil
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	q := c.QueueSize
	if q == 0 {
		q = DefaultQueueSize
	}
	s := &Client{
		dest: d, hostname: host, pid: os.Getpid(), queue: make(chan message, q),
		log: log, onDrop: onDrop, retryMin: c.RetryMin, retryMax: c.RetryMax,
	}
	if s.retryMin <= 0 {
		s.retryMin = time.Second
	}
	if s.retryMax <= 0 {
		s.retryMax = time.Minute
	}
	return s, nil
}

// Send queues one message and never blocks: a full queue drops it.
func (s *Client) Send(ctx context.Context, sev Severity, text string, at time.Time) {
	select {
	case s.queue <- message{severity: sev, text: text, at: at}:
	default:
		s.onDrop(ctx)
		if !s.dropping.Swap(true) {
			s.log.ErrorContext(ctx, "syslog alert queue full; dropping alerts until syslog is reachable",
				"syslog", s.dest.String(), "queue", cap(s.queue))
		}
	}
}

// Run delivers queued messages in order until ctx is done, then flushes what it can briefly.
func (s *Client) Run(ctx context.Context) {
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
		var m message
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
func (s *Client) flush(conn net.Conn, local bool, first *message) {
	ctx, cancel := context.WithTimeout(context.Background(), flushDeadline)
	defer cancel()
	var pending []message
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
func (s *Client) dial(ctx context.Context) (net.Conn, bool, error) {
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
func (s *Client) write(c net.Conn, local bool, m message) error {
	pri := facilityUser | m.severity
	var line string
	if local {
		line = fmt.Sprintf("<%d>%s %s[%d]: %s\n", pri, m.at.Format(time.Stamp), tag, s.pid, m.text)
	} else {
		line = fmt.Sprintf("<%d>%s %s %s[%d]: %s\n", pri, m.at.Format(time.RFC3339), s.hostname, tag, s.pid, m.text)
	}
	if err := c.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	_, err := c.Write([]byte(line))
	return err
}
