package icmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultHTTPSizes returns the response body sizes an HTTP-mode search fetches.
func DefaultHTTPSizes() []int {
	// Small bodies fit one segment on any path; from about 1,000 bytes up a
	// body and its headers (about 200 bytes) need full-sized segments, so
	// the steps are finer there, where overlays' MTUs cut in.
	return []int{64, 512, 1000, 1100, 1200, 1250, 1300, 1350, 1400, 1450, 1500, 2000, 4000, 9000, 16384, 65536}
}

// DefaultHTTPTries is how many fetches a size gets before it counts as failed.
const DefaultHTTPTries = 2

// DefaultHTTPTimeout is how long one fetch may take before it counts as stalled.
const DefaultHTTPTimeout = 2 * time.Second

// HTTPOptions shape an HTTP-mode search against a Heartbeat payload server.
type HTTPOptions struct {
	// Client sends the requests; nil uses a client without keep-alives, so
	// each size gets a fresh connection and a stalled one poisons nothing.
	Client *http.Client
	// URL is the payload server's base URL; "/heartbeat/{n}" is appended.
	URL string
	// Sizes are the body sizes fetched, ascending.
	Sizes []int
	// Timeout bounds each fetch.
	Timeout time.Duration
	// Tries is how many times a size is fetched before it counts as failed.
	Tries int
	// Request, if set, is applied to each request before it is sent (headers,
	// trace context).
	Request func(*http.Request)
}

// HTTPSizeResult is the outcome of fetching one size.
type HTTPSizeResult struct {
	Size     int
	Passed   bool
	Status   int   // the response's status code when it was not 200
	Received int64 // body bytes that arrived
	Duration time.Duration
	Err      error // why it failed; nil when it passed
}

// HTTPResult is what an HTTP-mode search found.
type HTTPResult struct {
	// Largest is the largest body that arrived whole.
	Largest int
	// FirstFailed is the smallest size that did not, 0 when all passed.
	FirstFailed int
	// Stalled is true when FirstFailed timed out with a smaller size passing:
	// on TCP, a black hole for full-sized segments.
	Stalled bool
	Tried   []HTTPSizeResult
}

// ErrHTTPUnreachable wraps the failure of the smallest size, which says nothing about packet sizes.
var ErrHTTPUnreachable = errors.New("payload server unreachable")

// HTTPPathSearch fetches /heartbeat/{n} for each size until one fails every try.
func HTTPPathSearch(ctx context.Context, o HTTPOptions) (HTTPResult, error) {
	// A size passes when its response arrives whole, with status 200 and
	// the payload pattern; larger sizes would fail too, so the search stops.
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	}
	if len(o.Sizes) == 0 {
		o.Sizes = DefaultHTTPSizes()
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultHTTPTimeout
	}
	if o.Tries <= 0 {
		o.Tries = DefaultHTTPTries
	}
	base := strings.TrimSuffix(o.URL, "/")
	var res HTTPResult
	for _, size := range o.Sizes {
		var r HTTPSizeResult
		for range o.Tries {
			if err := ctx.Err(); err != nil {
				return res, fmt.Errorf("http path search cut short at %d bytes: %w", size, err)
			}
			r = fetch(ctx, o, base, size)
			if r.Passed {
				break
			}
		}
		res.Tried = append(res.Tried, r)
		if r.Passed {
			res.Largest = size
			continue
		}
		if res.Largest == 0 {
			return res, fmt.Errorf("%w: %d-byte response: %w", ErrHTTPUnreachable, size, r.Err)
		}
		res.FirstFailed = size
		res.Stalled = isDeadline(r.Err)
		break
	}
	return res, nil
}

// fetch gets one size and checks it arrived whole.
func fetch(ctx context.Context, o HTTPOptions, base string, size int) HTTPSizeResult {
	r := HTTPSizeResult{Size: size}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/heartbeat/"+strconv.Itoa(size), nil)
	if err != nil {
		r.Err = err
		return r
	}
	if o.Request != nil {
		o.Request(req)
	}
	resp, err := o.Client.Do(req)
	if err != nil {
		r.Err = err
		return r
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(size)+1))
	r.Received = int64(len(body))
	switch {
	case err != nil:
		r.Err = fmt.Errorf("body cut off after %d of %d bytes: %w", len(body), size, err)
	case resp.StatusCode != http.StatusOK:
		r.Status = resp.StatusCode
		r.Err = fmt.Errorf("status %d", resp.StatusCode)
	case len(body) != size:
		r.Err = fmt.Errorf("body of %d bytes, want %d", len(body), size)
	case !isPattern(body):
		r.Err = errors.New("body differs from the payload pattern")
	default:
		r.Passed = true
	}
	return r
}

// isPattern reports whether b is the payload server's body: the 16-byte
// pattern repeated.
func isPattern(b []byte) bool {
	const pattern = "0123456789ABCDEF"
	for len(b) >= len(pattern) {
		if string(b[:len(pattern)]) != pattern {
			return false
		}
		b = b[len(pattern):]
	}
	return bytes.HasPrefix([]byte(pattern), b)
}

func isDeadline(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &te) && te.Timeout())
}
