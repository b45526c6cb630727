package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Pattern is the payload server's repeating body content.
const Pattern = "0123456789ABCDEF"

// ErrBadMix is wrapped by every ParseMix error.
var ErrBadMix = errors.New("invalid request mix")

// Kind is one request type of the mix.
type Kind struct {
	Name   string
	Method string
	Size   int64 // n in /heartbeat/{n}: the response body's length
	Upload int64 // request body bytes (POST)
}

// Kinds are the request types the soak knows, by the names ParseMix takes.
var Kinds = map[string]Kind{
	"1k-get":  {Name: "1k-get", Method: http.MethodGet, Size: 1 << 10},
	"64k-get": {Name: "64k-get", Method: http.MethodGet, Size: 64 << 10},
	"1m-get":  {Name: "1m-get", Method: http.MethodGet, Size: 1 << 20},
	"1m-post": {Name: "1m-post", Method: http.MethodPost, Size: 1 << 10, Upload: 1 << 20},
}

// DefaultMix is mostly small probes, with large bodies both ways to keep socket memory busy.
const DefaultMix = "1k-get:90,64k-get:8,1m-get:1,1m-post:1"

// Mix is a weighted set of request kinds.
type Mix struct {
	kinds   []Kind
	cum     []uint64 // cumulative weights
	total   uint64
	stride  uint64 // coprime to total: spreads each kind over the sequence
	weights []uint64
}

// ParseMix reads "name:weight,name:weight,...".
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[string]bool{}
	for part := range strings.SplitSeq(s, ",") {
		name, w, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return Mix{}, fmt.Errorf("%w: %q: want name:weight", ErrBadMix, part)
		}
		k, known := Kinds[name]
		if !known {
			names := make([]string, 0, len(Kinds))
			for n := range Kinds {
				names = append(names, n)
			}
			slices.Sort(names)
			return Mix{}, fmt.Errorf("%w: unknown kind %q (known: %s)", ErrBadMix, name, strings.Join(names, ", "))
		}
		if seen[name] {
			return Mix{}, fmt.Errorf("%w: %q given twice", ErrBadMix, name)
		}
		seen[name] = true
		weight, err := strconv.ParseUint(w, 10, 32)
		if err != nil || weight == 0 {
			return Mix{}, fmt.Errorf("%w: weight %q of %s: want a positive integer", ErrBadMix, w, name)
		}
		m.kinds = append(m.kinds, k)
		m.weights = append(m.weights, weight)
		m.total += weight
		m.cum = append(m.cum, m.total)
	}
	m.stride = 1
	for p := uint64(37); ; p += 2 {
		if gcd(p, m.total) == 1 {
			m.stride = p
			break
		}
	}
	return m, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Pick maps request number i to a kind, each exactly weight times per block, interleaved.
func (m Mix) Pick(i uint64) Kind {
	slot := (i * m.stride) % m.total
	j, _ := slices.BinarySearch(m.cum, slot+1)
	return m.kinds[j]
}

// String renders the mix as ParseMix reads it.
func (m Mix) String() string {
	parts := make([]string, len(m.kinds))
	for i, k := range m.kinds {
		parts[i] = fmt.Sprintf("%s:%d", k.Name, m.weights[i])
	}
	return strings.Join(parts, ",")
}

// LoadConfig bounds one run of the load generator.
type LoadConfig struct {
	BaseURL  string // http://127.0.0.1:PORT
	Conns    int    // keep-alive connections, one worker each
	Requests int64  // stop after this many; 0: no bound
	Duration time.Duration
	Mix      Mix
	// First numbers the run's first request, so a second phase continues the mix's sequence.
	First uint64
	// VerifyEvery checks every VerifyEvery-th body in full; every length is checked.
	VerifyEvery uint64
}

// Validate reports the first impossible setting.
func (c LoadConfig) Validate() error {
	switch {
	case !strings.HasPrefix(c.BaseURL, "http://127.0.0.1:"):
		return fmt.Errorf("load target %q: the soak only sends to http://127.0.0.1", c.BaseURL)
	case c.Conns < 1:
		return fmt.Errorf("load connections %d: want at least 1", c.Conns)
	case c.Requests <= 0 && c.Duration <= 0:
		return errors.New("load: set a request count or a duration, so the run stops by itself")
	case c.Mix.total == 0:
		return errors.New("load: empty request mix")
	}
	return nil
}

// Load is a running or finished load generator whose counters may be read while it runs.
type Load struct {
	cfg      LoadConfig
	next     atomic.Uint64
	stopping atomic.Bool
	started  time.Time
	ended    atomic.Int64 // UnixNano when the last worker stopped

	Done         atomic.Int64 // requests completed, whatever the outcome
	OK           atomic.Int64 // 2xx with the right body
	Non2xx       atomic.Int64
	SocketErrors atomic.Int64 // dial, write, read or premature close
	BadBodies    atomic.Int64 // 2xx with the wrong length or content
	BytesIn      atomic.Int64
	BytesOut     atomic.Int64

	mu       sync.Mutex
	samples  []string // the first few failures, verbatim
	statuses map[int]int64
	perKind  map[string]*kindStats
}

// kindStats is a per-kind latency histogram in power-of-two microseconds.
type kindStats struct {
	n       int64
	max     time.Duration
	buckets [40]int64
}

func (s *kindStats) add(d time.Duration) {
	s.n++
	s.max = max(s.max, d)
	us := uint64(max(d.Microseconds(), 1))
	s.buckets[min(bits.Len64(us), len(s.buckets)-1)]++
}

// quantile returns an upper bound of the q-quantile (power-of-two resolution).
func (s *kindStats) quantile(q float64) time.Duration {
	want := int64(float64(s.n)*q + 0.5)
	var seen int64
	for i, c := range s.buckets {
		seen += c
		if seen >= want && c > 0 {
			return min(time.Duration(1<<i)*time.Microsecond, s.max)
		}
	}
	return s.max
}

// StartLoad starts the workers; Wait blocks until they stop.
func StartLoad(ctx context.Context, cfg LoadConfig) (*Load, <-chan struct{}, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	l := &Load{cfg: cfg, started: time.Now(), statuses: map[int]int64{}, perKind: map[string]*kindStats{}}
	if cfg.Duration > 0 {
		// Stop rather than cancel: requests in flight finish, so the end of
		// the run is not counted as the server's failure.
		time.AfterFunc(cfg.Duration, l.Stop)
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.Conns,
		MaxConnsPerHost:     cfg.Conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		// A response that takes this long is a hang; count it as a socket error.
		ResponseHeaderTimeout: 30 * time.Second,
	}
	client := &http.Client{Transport: tr}
	upload := bytes.Repeat([]byte(Pattern), (1<<20)/len(Pattern))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range cfg.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.work(ctx, client, upload)
		}()
	}
	go func() {
		wg.Wait()
		tr.CloseIdleConnections()
		l.ended.Store(time.Now().UnixNano())
		close(done)
	}()
	return l, done, nil
}

func (l *Load) work(ctx context.Context, client *http.Client, upload []byte) {
	buf := make([]byte, 256<<10)
	// One pattern longer than any read, so that a read starting mid-pattern
	// compares against a slice of it.
	pat := bytes.Repeat([]byte(Pattern), len(buf)/len(Pattern)+1)
	for ctx.Err() == nil && !l.stopping.Load() {
		i := l.next.Add(1) - 1
		if l.cfg.Requests > 0 && int64(i) >= l.cfg.Requests {
			return
		}
		seq := l.cfg.First + i
		k := l.cfg.Mix.Pick(seq)
		verify := l.cfg.VerifyEvery > 0 && seq%l.cfg.VerifyEvery == 0
		start := time.Now()
		counter, err := l.one(ctx, client, k, upload, buf, pat, verify)
		d := time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return // the test was cancelled: not the server's failure
			}
			l.fail(counter, err)
		}
		l.Done.Add(1)
		l.mu.Lock()
		ks := l.perKind[k.Name]
		if ks == nil {
			ks = &kindStats{}
			l.perKind[k.Name] = ks
		}
		ks.add(d)
		l.mu.Unlock()
		if err == nil {
			l.OK.Add(1)
		}
	}
}

// errNon2xx and errBadBody describe failed requests.
var (
	errNon2xx  = errors.New("non-2xx status")
	errBadBody = errors.New("wrong body")
)

// one sends one request and reads the answer; on failure it returns the
// counter the failure belongs to.
func (l *Load) one(ctx context.Context, client *http.Client, k Kind, upload, buf, pat []byte, verify bool) (*atomic.Int64, error) {
	url := l.cfg.BaseURL + "/heartbeat/" + strconv.FormatInt(k.Size, 10)
	var body io.Reader
	if k.Upload > 0 {
		body = bytes.NewReader(upload[:k.Upload])
	}
	req, err := http.NewRequestWithContext(ctx, k.Method, url, body)
	if err != nil {
		return &l.SocketErrors, fmt.Errorf("%s: %w", k.Name, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return &l.SocketErrors, fmt.Errorf("%s: %w", k.Name, err)
	}
	defer resp.Body.Close()
	l.BytesOut.Add(k.Upload)
	var n int64
	for {
		m, rerr := resp.Body.Read(buf)
		if verify && m > 0 {
			off := int(n % int64(len(Pattern)))
			if !bytes.Equal(buf[:m], pat[off:off+m]) {
				_, _ = io.Copy(io.Discard, resp.Body)
				return &l.BadBodies, fmt.Errorf("%s: %w: differs from the pattern near byte %d", k.Name, errBadBody, n)
			}
		}
		n += int64(m)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			l.BytesIn.Add(n)
			return &l.SocketErrors, fmt.Errorf("%s: reading the body after %d bytes: %w", k.Name, n, rerr)
		}
	}
	l.BytesIn.Add(n)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		l.mu.Lock()
		l.statuses[resp.StatusCode]++
		l.mu.Unlock()
		return &l.Non2xx, fmt.Errorf("%s: %w: %s", k.Name, errNon2xx, resp.Status)
	}
	if n != k.Size || resp.ContentLength != k.Size {
		return &l.BadBodies, fmt.Errorf("%s: %w: %d bytes, Content-Length %d, want %d", k.Name, errBadBody, n, resp.ContentLength, k.Size)
	}
	return nil, nil
}

// fail counts err and keeps the first few for the report.
func (l *Load) fail(counter *atomic.Int64, err error) {
	counter.Add(1)
	l.mu.Lock()
	if len(l.samples) < 10 {
		l.samples = append(l.samples, err.Error())
	}
	l.mu.Unlock()
}

// Stop lets the requests in flight finish and starts no more.
func (l *Load) Stop() { l.stopping.Store(true) }

// Running reports whether any worker is still sending.
func (l *Load) Running() bool { return l.ended.Load() == 0 }

// Elapsed is the run's wall time so far, or in total once it has stopped.
func (l *Load) Elapsed() time.Duration {
	if e := l.ended.Load(); e != 0 {
		return time.Unix(0, e).Sub(l.started)
	}
	return time.Since(l.started)
}

// Failures returns the first failures seen, verbatim.
func (l *Load) Failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.samples)
}

// Statuses counts the non-2xx answers by status code.
func (l *Load) Statuses() map[int]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]int64, len(l.statuses))
	for k, v := range l.statuses {
		out[k] = v
	}
	return out
}

// KindLatency is one request kind's count and latencies.
type KindLatency struct {
	Name          string
	N             int64
	P50, P99, Max time.Duration
}

// Latencies reports each kind's latencies, in the mix's order.
func (l *Load) Latencies() []KindLatency {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []KindLatency
	for _, k := range l.cfg.Mix.kinds {
		s := l.perKind[k.Name]
		if s == nil {
			continue
		}
		out = append(out, KindLatency{k.Name, s.n, s.quantile(0.5), s.quantile(0.99), s.max})
	}
	return out
}
