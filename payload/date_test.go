package payload

import (
	"net/http"
	"testing"
	"time"
)

// TestDateHeader: every answer carries one Date, in HTTP's format, of the
// second the request was served in, from the handler's cache or net/http.
func TestDateHeader(t *testing.T) {
	_, ts := newTestServer(t, Config{})
	for _, path := range []string{"/heartbeat/17", "/heartbeat/0x", "/version", "/nope"} {
		before := time.Now().Truncate(time.Second)
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		after := time.Now()
		if n := len(resp.Header.Values("Date")); n != 1 {
			t.Fatalf("%s: %d Date headers, want 1", path, n)
		}
		d, err := http.ParseTime(resp.Header.Get("Date"))
		if err != nil {
			t.Fatalf("%s: Date %q: %v", path, resp.Header.Get("Date"), err)
		}
		if d.Before(before) || d.After(after) {
			t.Errorf("%s: Date %v outside [%v, %v]", path, d, before, after)
		}
	}
}

// TestDateCache: one format per second, and a new second gets its own.
func TestDateCache(t *testing.T) {
	var c dateCache
	t0 := time.Date(2026, 12, 1, 11, 59, 59, 100, time.FixedZone("x", 3600))
	if got, want := c.get(t0)[0], "Tue, 01 Dec 2026 10:59:59 GMT"; got != want {
		t.Errorf("Date = %q, want %q", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.get(t0.Add(500 * time.Millisecond)) }); n != 0 {
		t.Errorf("same second allocated %.0f times, want 0", n)
	}
	if got, want := c.get(t0.Add(time.Second))[0], "Tue, 01 Dec 2026 11:00:00 GMT"; got != want {
		t.Errorf("next second: Date = %q, want %q", got, want)
	}
}
