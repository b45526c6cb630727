package payload

// Hostile-connection tests: connection storms, slowloris, oversized headers,
// clients that stop reading or stop sending, and request-smuggling pins. Each
// storm runs against the payload handler behind NewHTTPServer, on a real
// loopback listener, while a health client keeps asking /healthz, and ends by
// checking that the process's goroutines and file descriptors return to where
// they started.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// raceSlowdown multiplies the stall bound below (in setPhase);
// storm_race_test.go raises it under the race detector, which slows every
// goroutine.
var raceSlowdown time.Duration = 1

// stallBound is how long one /healthz poll may take before the server counts
// as stalled. It catches a server that stops accepting or answering (that
// shows as seconds, or as a failed poll at the client's 5 s timeout); how fast
// it answers under a storm is a benchmark figure, not a unit-test assertion,
// because this process's own storm client shares the server's CPUs, scheduler
// and heap (measured: 1.8 s answers while dialing at load 8 on 2 cores, under
// 1 ms on an idle machine).
const stallBound = 3 * time.Second

// healthPoller asks /healthz on a new connection every few milliseconds until
// stopped, and remembers the slowest answer and every failure.
type healthPoller struct {
	url    string
	client *http.Client
	stop   chan struct{}
	done   chan struct{}
	polls  atomic.Int64

	phase atomic.Pointer[pollPhase] // what the storm is doing

	mu       sync.Mutex
	max      time.Duration
	maxPhase map[pollPhase]time.Duration // slowest answer per phase
	failures []string
}

// pollPhase names a stage of a storm and the health budget that applies to it.
type pollPhase struct {
	name   string
	budget time.Duration
}

// setPhase labels the polls that follow, so a slow answer can be traced to
// what the storm was doing at the time.
func (p *healthPoller) setPhase(name string, budget time.Duration) {
	p.phase.Store(&pollPhase{name, budget * raceSlowdown})
}

func startHealthPoller(t *testing.T, addr string) *healthPoller {
	t.Helper()
	p := &healthPoller{
		url: "http://" + addr + "/healthz",
		// A new connection per poll: a load balancer's probe does not get to
		// reuse a warm connection, and accepting is what a storm threatens.
		client:   &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second},
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		maxPhase: map[pollPhase]time.Duration{},
	}
	p.setPhase("storm", stallBound)
	go p.run()
	t.Cleanup(func() { p.halt() })
	return p
}

func (p *healthPoller) run() {
	defer close(p.done)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		phase := *p.phase.Load()
		start := time.Now()
		err := p.pollOnce()
		d := time.Since(start)
		p.mu.Lock()
		p.max = max(p.max, d)
		p.maxPhase[phase] = max(p.maxPhase[phase], d)
		if err != nil && len(p.failures) < 10 {
			p.failures = append(p.failures, err.Error())
		}
		p.mu.Unlock()
		p.polls.Add(1)
	}
}

func (p *healthPoller) pollOnce() error {
	resp, err := p.client.Get(p.url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		return fmt.Errorf("/healthz: %d %q", resp.StatusCode, body)
	}
	return nil
}

func (p *healthPoller) halt() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// waitPolls waits until the poller has completed n more polls, so a storm is
// known to have been observed for a while, not merely started.
func (p *healthPoller) waitPolls(t *testing.T, n int64) {
	t.Helper()
	want := p.polls.Load() + n
	testkit.WaitFor(t, 30*time.Second, fmt.Sprintf("%d health polls", n), func() (bool, string) {
		got := p.polls.Load()
		return got >= want, fmt.Sprintf("%d of %d polls", got, want)
	})
}

// finish stops the poller and fails the test if any answer failed or was slow.
func (p *healthPoller) finish(t *testing.T) {
	t.Helper()
	p.halt()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.polls.Load()
	var phases []string
	for ph, d := range p.maxPhase {
		phases = append(phases, fmt.Sprintf("%s %v (budget %v)", ph.name, d.Round(time.Microsecond), ph.budget))
		if d > ph.budget {
			t.Errorf("slowest /healthz took %v while %s, budget %v", d, ph.name, ph.budget)
		}
	}
	sort.Strings(phases)
	t.Logf("health: %d polls, slowest %v; by phase: %s", n, p.max, strings.Join(phases, "; "))
	if n == 0 {
		t.Error("health poller never completed a poll")
	}
	if len(p.failures) > 0 {
		t.Errorf("health requests failed during the storm: %q", p.failures)
	}
}

// raiseFDLimit makes room for need descriptors and returns how many the
// process may hold. Go already lifts the soft limit to the hard one at start;
// root may raise the hard limit too.
func raiseFDLimit(t *testing.T, need uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= need {
		return lim.Cur
	}
	want := syscall.Rlimit{Cur: need, Max: max(lim.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Not root: take what the hard limit allows.
		want = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return lim.Cur
		}
	}
	return want.Cur
}

// settle takes the baseline once the server is up and has answered once, so
// lazily started goroutines are in it, and once what earlier tests left
// winding down (servers still closing their connections) is
// gone: the counts have held still for a quarter of a second.
func settle(t *testing.T, addr string) testkit.Resources {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	last, still := testkit.Snapshot(t), 0
	deadline := time.Now().Add(10 * time.Second)
	for still < 5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // polling interval
		now := testkit.Snapshot(t)
		if now == last {
			still++
		} else {
			last, still = now, 0
		}
	}
	return last
}

// trickle writes the bytes next gives, one a second, to c until next has
// no more, a write fails, or closed or stop is closed.
func trickle(c net.Conn, next func(i int) (byte, bool), closed, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		b, ok := next(i)
		if !ok {
			return
		}
		if _, err := c.Write([]byte{b}); err != nil {
			return
		}
		select {
		case <-tick.C:
		case <-closed:
			return
		case <-stop:
			return
		}
	}
}

// stormDialers bounds the dials in flight during the idle storm.
var stormDialers = 64

func TestStormIdleConnections(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	// Both ends of every connection live in this process.
	if lim := raiseFDLimit(t, uint64(2*n+512)); lim < uint64(2*n+512) {
		n = int(lim-512) / 2
		t.Logf("RLIMIT_NOFILE is %d: storming with %d connections", lim, n)
	}
	addr := startHTTPServer(t, testConfig(), nil)
	base := settle(t, addr)
	health := startHealthPoller(t, addr)

	health.setPhase("dialing", stallBound)
	conns := make([]net.Conn, n)
	var (
		wg      sync.WaitGroup
		next    atomic.Int64
		dialErr atomic.Pointer[error]
	)
	// A bounded number of dials in flight keeps the accept backlog from
	// overflowing; an overflow would stall the health client's SYN for a
	// second in the kernel, which says nothing about the server.
	for range stormDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					dialErr.CompareAndSwap(nil, &err)
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	if e := dialErr.Load(); e != nil {
		t.Fatalf("dialing the storm: %v", *e)
	}
	// The server holds one goroutine per accepted connection; the client's
	// raw connections hold none, so this proves every connection is open at once.
	testkit.WaitFor(t, 5*time.Second, "the server to hold every idle connection", func() (bool, string) {
		g := testkit.GoroutinesIn("net/http.(*conn).serve")
		return g >= n, fmt.Sprintf("%d connections served, want ≥ %d", g, n)
	})
	// Collect the dial phase's garbage while still in it: holding idle
	// connections allocates nothing, so this is what the server's heap
	// looks like through a long-lived storm.
	runtime.GC()
	health.setPhase("holding", stallBound)
	health.waitPolls(t, 30)
	health.setPhase("closing", stallBound)
	for i, c := range conns {
		c.Close()
		conns[i] = nil
	}
	health.setPhase("closed", stallBound)
	health.waitPolls(t, 5)
	health.finish(t)
	testkit.WaitBaseline(t, base, 15*time.Second)
}

func TestStormSlowlorisAndIdleClientsCutOff(t *testing.T) {
	const (
		headerTimeout = time.Second
		idleTimeout   = 2 * time.Second
	)
	addr := startHTTPServer(t, testConfig(), func(srv *http.Server) {
		srv.ReadHeaderTimeout, srv.IdleTimeout = headerTimeout, idleTimeout
	})
	base := settle(t, addr)
	health := startHealthPoller(t, addr)

	// Each kind of client holds a connection without finishing a request and
	// must be cut off by the timeout named, measured from before the dial
	// (the server's clock starts after accepting, so never earlier).
	slow := "GET /heartbeat/1024 HTTP/1.1\r\nHost: storm\r\nX-Slow: " + strings.Repeat("a", 64)
	kinds := []struct {
		name    string
		timeout time.Duration
		send    string // sent at once after the dial
		trickle string // then a byte a second
	}{
		{"slowloris", headerTimeout, "", slow},
		{"idle before any request", headerTimeout, "", ""},
		{"idle after one request", idleTimeout, "GET /healthz HTTP/1.1\r\nHost: storm\r\n\r\n", ""},
		// The HTTP/2 preface and an empty SETTINGS frame, then nothing:
		// after the preface only the idle timeout applies.
		{"h2c idle after the preface", idleTimeout, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", ""},
	}
	type result struct {
		kind    int
		elapsed time.Duration
	}
	const perKind = 25
	results := make(chan result, perKind*len(kinds))
	stop := make(chan struct{})
	defer close(stop)
	for i := range perKind * len(kinds) {
		k := i % len(kinds)
		start := time.Now()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			_, _ = io.Copy(io.Discard, c) // returns when the server hangs up
			results <- result{k, time.Since(start)}
			c.Close()
		}()
		if _, err := io.WriteString(c, kinds[k].send); err != nil {
			t.Fatal(err)
		}
		if t := kinds[k].trickle; t != "" {
			next := func(i int) (byte, bool) {
				if i >= len(t) {
					return 0, false
				}
				return t[i], true
			}
			go trickle(c, next, closed, stop)
		}
	}
	for range perKind * len(kinds) {
		select {
		case r := <-results:
			k := kinds[r.kind]
			if r.elapsed < k.timeout || r.elapsed > k.timeout+3*time.Second {
				t.Errorf("%s: cut off after %v, want just after the %v timeout", k.name, r.elapsed, k.timeout)
			}
		case <-time.After(idleTimeout + 10*time.Second):
			t.Fatal("a client that never finished a request was never cut off")
		}
	}
	health.finish(t)
	testkit.WaitBaseline(t, base, 10*time.Second)
}

func TestOversizedHeaders(t *testing.T) {
	addr := startHTTPServer(t, testConfig(), nil)
	base := settle(t, addr)
	health := startHealthPoller(t, addr)
	limit := maxHeaderBytes
	// Go's server allows 4 KiB of slack over MaxHeaderBytes, so "over" is well over.
	over := limit + 8<<10
	tests := []struct {
		name       string
		req        string
		wantStatus int
	}{
		{"under the limit", "GET /heartbeat/17 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", limit/2) + "\r\n\r\n", 200},
		{"one huge header", "GET /heartbeat/17 HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", over) + "\r\n\r\n", 431},
		{"many headers", "GET /heartbeat/17 HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Many: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", over/40) + "\r\n", 431},
		{"huge request line", "GET /heartbeat/17?" + strings.Repeat("a", over) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431},
		{"endless header", "GET /heartbeat/17 HTTP/1.1\r\nHost: x\r\nX-Endless: " + strings.Repeat("a", 4*over), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Several at once, so the health client competes with them.
			var wg sync.WaitGroup
			for range 20 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := rawExchange(addr, tt.req, 5*time.Second)
					if err != nil {
						t.Error(err)
						return
					}
					if len(resp) == 0 {
						t.Errorf("no response, want %d", tt.wantStatus)
						return
					}
					if got := resp[0].StatusCode; got != tt.wantStatus {
						t.Errorf("status %d, want %d", got, tt.wantStatus)
					}
				}()
			}
			wg.Wait()
		})
	}
	health.waitPolls(t, 5)
	health.finish(t)
	testkit.WaitBaseline(t, base, 10*time.Second)
}

// rawExchange writes req on a new connection, half-closes it, and parses every
// response the server sends until it hangs up or the deadline passes. A server
// that keeps a connection open after the client's half-close is reported by
// the deadline error.
func rawExchange(addr, req string, within time.Duration) ([]*http.Response, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(within))
	// The server may answer and hang up before it has read everything (431);
	// then the rest of the write fails with a reset, which is expected.
	werr := make(chan error, 1)
	go func() {
		_, err := io.WriteString(c, req)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	raw, rerr := io.ReadAll(c)
	<-werr
	if rerr != nil && !errors.Is(rerr, syscall.ECONNRESET) {
		return nil, fmt.Errorf("reading responses (got %q): %w", raw, rerr)
	}
	return parseResponses(raw)
}

// parseResponses splits what a server sent on one connection into responses,
// bodies read.
func parseResponses(raw []byte) ([]*http.Response, error) {
	var resps []*http.Response
	br := bufio.NewReader(bytes.NewReader(raw))
	for {
		if _, err := br.Peek(1); err != nil {
			return resps, nil
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return resps, fmt.Errorf("parsing response %d of %q: %w", len(resps)+1, raw, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return resps, fmt.Errorf("reading the body of response %d of %q: %w", len(resps)+1, raw, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resps = append(resps, resp)
	}
}

func TestStormStalledReaders(t *testing.T) {
	cfg := testConfig()
	cfg.MaxSize = 1 << 30
	cfg.WriteTimeout = 500 * time.Millisecond
	addr := startHTTPServer(t, cfg, nil)
	base := settle(t, addr)
	health := startHealthPoller(t, addr)

	// Clients that ask for 1 GiB and never read: the kernel buffers fill, the
	// handler's next write blocks, and the per-chunk deadline must end it.
	const stalled = 16
	conns := make([]*net.TCPConn, stalled)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := c.(*net.TCPConn)
		t.Cleanup(func() { tc.Close() })
		if _, err := io.WriteString(tc, "GET /heartbeat/1073741824 HTTP/1.1\r\nHost: storm\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns[i] = tc
	}
	// An HTTP/2 client that stops reading is held back by flow control rather
	// than by the socket; the same deadline must reset its stream.
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	h2tr := &http.Transport{Protocols: &h2}
	t.Cleanup(h2tr.CloseIdleConnections)
	h2resp, err := (&http.Client{Transport: h2tr}).Get("http://" + addr + "/heartbeat/1073741824")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h2resp.Body.Close() })

	testkit.WaitFor(t, 10*time.Second, "the stalled responses to start", func() (bool, string) {
		n := testkit.GoroutinesIn("payload.(*Server).writeBody")
		return n == stalled+1, fmt.Sprintf("%d handlers writing, want %d", n, stalled+1)
	})
	// Meanwhile, honest clients are served in full.
	for range 5 {
		resp, err := http.Get("http://" + addr + "/heartbeat/1048576")
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != 1<<20 {
			t.Fatalf("honest 1 MiB read during the storm: %d bytes, %v", n, err)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	// Every stalled handler gives up while its client still holds the connection.
	// The server's ends of the HTTP/1 connections are closed (only the
	// clients' fds remain) and no handler is left writing.
	testkit.WaitFor(t, 10*time.Second, "the write timeout to cut off every stalled reader", func() (bool, string) {
		n, now := testkit.GoroutinesIn("payload.(*Server).writeBody"), testkit.Snapshot(t)
		return n == 0 && now.FDs <= base.FDs+stalled+2, fmt.Sprintf("%d handlers still writing, %d fds (base %d + %d stalled clients + both ends of the HTTP/2 connection)", n, now.FDs, base.FDs, stalled)
	})
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("stalled client %d: reading what the server sent: %v", i, err)
		}
		if n >= 1<<30 {
			t.Errorf("stalled client %d received the whole GiB: the server never gave up", i)
		}
		c.Close()
	}
	if n, err := io.Copy(io.Discard, h2resp.Body); err == nil || n >= 1<<30 {
		t.Errorf("stalled HTTP/2 stream: read %d bytes and err %v, want a reset before 1 GiB", n, err)
	}
	h2resp.Body.Close()
	h2tr.CloseIdleConnections()
	health.finish(t)
	testkit.WaitBaseline(t, base, 10*time.Second)
}

func TestStormStalledUploads(t *testing.T) {
	// A client that sends its headers and then its body a byte a second, or
	// not at all, holds a handler for as long as it likes unless the server
	// bounds the body's pace the way it bounds a large response's.
	cfg := testConfig()
	cfg.WriteTimeout = 500 * time.Millisecond
	addr := startHTTPServer(t, cfg, nil)
	base := settle(t, addr)
	health := startHealthPoller(t, addr)

	const per = 8
	closedAfter := make(chan time.Duration, 2*per)
	stop := make(chan struct{})
	defer close(stop)
	for i := range 2 * per {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		start := time.Now()
		if _, err := io.WriteString(c, "POST /heartbeat/1 HTTP/1.1\r\nHost: storm\r\nContent-Length: 1048576\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			_, _ = io.Copy(io.Discard, c)
			closedAfter <- time.Since(start)
			c.Close()
		}()
		if i%2 == 0 {
			go trickle(c, func(int) (byte, bool) { return 'x', true }, closed, stop)
		}
	}
	// The same over HTTP/2: a stream whose body never comes.
	var h2 http.Protocols
	h2.SetUnencryptedHTTP2(true)
	h2tr := &http.Transport{Protocols: &h2}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close(); h2tr.CloseIdleConnections() })
	h2done := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/heartbeat/1", pr)
		req.ContentLength = 1 << 20
		if resp, err := (&http.Client{Transport: h2tr}).Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		h2done <- time.Since(start)
	}()

	health.waitPolls(t, 10)
	limit := cfg.WriteTimeout + 4*time.Second
	for range 2*per + 1 {
		select {
		case d := <-closedAfter:
			if d > limit {
				t.Errorf("stalled upload cut off after %v, want within %v", d, limit)
			}
		case d := <-h2done:
			if d > limit {
				t.Errorf("stalled HTTP/2 upload cut off after %v, want within %v", d, limit)
			}
		case <-time.After(limit + 2*time.Second):
			t.Fatalf("a stalled upload still holds its handler after %v (%d handlers reading bodies): "+
				"request bodies need a per-chunk read deadline like responses have",
				limit+2*time.Second, testkit.GoroutinesIn("payload.(*Server).discardBody"))
		}
	}
	pw.Close()
	h2tr.CloseIdleConnections()
	health.finish(t)
	testkit.WaitBaseline(t, base, 10*time.Second)
}

func TestRequestSmuggling(t *testing.T) {
	addr := startHTTPServer(t, testConfig(), nil)
	// Each case hides a second request, for /heartbeat/31337, in bytes that a
	// front end which disagrees with Go about the framing would forward as
	// body. The server must refuse the message, or at least hang up after it,
	// so that the hidden request is never answered.
	const hidden = "GET /heartbeat/31337 HTTP/1.1\r\nHost: x\r\n\r\n"
	chunkedHidden := "0\r\n\r\n" + hidden
	tests := []struct {
		name string
		req  string
		// wantStatus is the first answer's status; 0 means either a 4xx/5xx
		// refusal or one answer followed by a hang-up.
		wantStatus int
	}{
		{"CL and TE chunked", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(chunkedHidden)) +
			"\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedHidden, 0},
		{"TE chunked then CL", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: " + fmt.Sprint(len(chunkedHidden)) +
			"\r\n\r\n" + chunkedHidden, 0},
		{"duplicate differing CL", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: " + fmt.Sprint(len(hidden)) +
			"\r\n\r\n" + hidden, 400},
		{"space before colon in TE", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: " + fmt.Sprint(len(chunkedHidden)) +
			"\r\n\r\n" + chunkedHidden, 400},
		{"space before colon in CL", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nContent-Length : " + fmt.Sprint(len(hidden)) + "\r\n\r\n" + hidden, 400},
		{"TE chunked, identity", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\nContent-Length: " + fmt.Sprint(len(chunkedHidden)) +
			"\r\n\r\n" + chunkedHidden, 501},
		{"two TE fields", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n" + chunkedHidden, 501},
		{"obs-fold TE with CL", "POST /heartbeat/1 HTTP/1.1\r\nHost: x\r\nContent-Length: " + fmt.Sprint(len(chunkedHidden)) +
			"\r\nTransfer-Encoding:\r\n chunked\r\n\r\n" + chunkedHidden, 0},
		{"bare LF line endings", "POST /heartbeat/1 HTTP/1.1\nHost: x\nContent-Length: 0\nTransfer-Encoding: chunked\n\n" + chunkedHidden, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The client never half-closes, so a server that waits for more
			// requests on the connection shows up as a missing hang-up.
			resps, err := rawExchangeOpen(addr, tt.req, 3*time.Second)
			for _, r := range resps {
				if body, _ := io.ReadAll(r.Body); len(body) == 31337 {
					t.Errorf("the hidden request was answered: %d responses", len(resps))
				}
			}
			if err != nil {
				t.Fatalf("%v (%d responses before it)", err, len(resps))
			}
			if len(resps) == 0 {
				return // a hang-up with no answer at all is a refusal too
			}
			got := resps[0].StatusCode
			switch {
			case tt.wantStatus != 0 && got != tt.wantStatus:
				t.Errorf("status %d, want %d", got, tt.wantStatus)
			case len(resps) > 1:
				t.Errorf("%d responses on one connection, want the server to hang up after the first", len(resps))
			}
		})
	}
}

// rawExchangeOpen is rawExchange without the half-close: it reports an error
// when the server keeps the connection open past the deadline.
func rawExchangeOpen(addr, req string, within time.Duration) ([]*http.Response, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(within))
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	raw, rerr := io.ReadAll(c)
	resps, perr := parseResponses(raw)
	if perr != nil {
		return resps, perr
	}
	var ne net.Error
	if errors.As(rerr, &ne) && ne.Timeout() {
		return resps, fmt.Errorf("server kept the connection open after the message: %w", rerr)
	}
	if rerr != nil && !errors.Is(rerr, syscall.ECONNRESET) {
		return resps, rerr
	}
	return resps, nil
}
