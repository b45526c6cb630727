package soak

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/payload"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		in      string
		want    string // String() of the result
		wantErr string
	}{
		{DefaultMix, DefaultMix, ""},
		{" 1k-get:1 , 1m-post:3", "1k-get:1,1m-post:3", ""},
		{"2k-get:1", "", `unknown kind "2k-get"`},
		{"1k-get", "", "want name:weight"},
		{"1k-get:0", "", "want a positive integer"},
		{"1k-get:-1", "", "want a positive integer"},
		{"1k-get:1,1k-get:2", "", "given twice"},
	}
	for _, tt := range tests {
		m, err := ParseMix(tt.in)
		if tt.wantErr != "" {
			if err == nil || !errors.Is(err, ErrBadMix) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseMix(%q) error %v, want %q wrapping ErrBadMix", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || m.String() != tt.want {
			t.Errorf("ParseMix(%q) = %q, %v; want %q", tt.in, m, err, tt.want)
		}
	}
}

func TestMixPickKeepsWeightsAndInterleaves(t *testing.T) {
	m, err := ParseMix(DefaultMix)
	if err != nil {
		t.Fatal(err)
	}
	// Any window of whole blocks holds each kind exactly weight times.
	counts := map[string]int{}
	longestRun, run := 0, 0
	var prev string
	for i := uint64(12345); i < 12345+1000; i++ {
		k := m.Pick(i).Name
		counts[k]++
		if k == prev {
			run++
		} else {
			run = 1
		}
		if k != "1k-get" {
			longestRun = max(longestRun, run)
		}
		prev = k
	}
	want := map[string]int{"1k-get": 900, "64k-get": 80, "1m-get": 10, "1m-post": 10}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("%s picked %d times in 1000, want %d", k, counts[k], n)
		}
	}
	if longestRun > 1 {
		t.Errorf("large requests come in runs of %d; the mix should spread them", longestRun)
	}
}

func TestChecksYAMLLoadsWithTheRealParser(t *testing.T) {
	spec := ChecksSpec{
		N: 1000, Self: "127.0.0.1:8080",
		HTTPTargets: []string{"http://127.0.0.1:1001", "http://127.0.0.1:1002"},
		TCPTargets:  []string{"127.0.0.1:2001"},
		MinInterval: 10 * time.Second, MaxInterval: 30 * time.Second, Timeout: 2 * time.Second,
	}
	b, err := ChecksYAML(spec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse("soak.yaml", b)
	if err != nil {
		t.Fatalf("the checks loader rejects the generated file: %v", err)
	}
	if len(f.Checks) != 1000 {
		t.Fatalf("%d checks, want 1000", len(f.Checks))
	}
	types := map[string]int{}
	intervals := map[time.Duration]bool{}
	for _, c := range f.Checks {
		types[c.Type]++
		intervals[c.Interval] = true
		if c.Interval < spec.MinInterval || c.Interval > spec.MaxInterval || c.Timeout != spec.Timeout {
			t.Errorf("%s: interval %v timeout %v, want %v–%v and %v", c.Name, c.Interval, c.Timeout, spec.MinInterval, spec.MaxInterval, spec.Timeout)
		}
		if !strings.Contains(c.Target, "127.0.0.1:") {
			t.Errorf("%s: target %q is not on 127.0.0.1", c.Name, c.Target)
		}
	}
	if types["http"] != 900 || types["tcp"] != 100 {
		t.Errorf("check types %v, want 900 http and 100 tcp", types)
	}
	if len(intervals) != 21 {
		t.Errorf("%d distinct intervals, want every whole second from 10s to 30s", len(intervals))
	}
}

func TestChecksSpecValidate(t *testing.T) {
	good := ChecksSpec{N: 1, Self: "127.0.0.1:1", HTTPTargets: []string{"http://127.0.0.1:2"}, TCPTargets: []string{"127.0.0.1:3"},
		MinInterval: 10 * time.Second, MaxInterval: 30 * time.Second, Timeout: time.Second}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid spec: %v", err)
	}
	tests := []struct {
		name   string
		change func(*ChecksSpec)
		want   string
	}{
		{"no checks", func(s *ChecksSpec) { s.N = 0 }, "want at least 1"},
		{"remote sidecar", func(s *ChecksSpec) { s.Self = "10.0.0.1:80" }, "not on 127.0.0.1"},
		{"remote http target", func(s *ChecksSpec) { s.HTTPTargets = []string{"http://example.com"} }, "not http://127.0.0.1"},
		{"remote tcp target", func(s *ChecksSpec) { s.TCPTargets = []string{"example.com:22"} }, "not on 127.0.0.1"},
		{"intervals reversed", func(s *ChecksSpec) { s.MaxInterval = time.Second }, "want 1s ≤ min ≤ max"},
		{"timeout too long", func(s *ChecksSpec) { s.Timeout = time.Minute }, "want 0 < timeout"},
	}
	for _, tt := range tests {
		s := good
		tt.change(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	before, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.RSS <= 0 || before.PeakRSS < before.RSS || before.Threads <= 0 || before.FDs <= 0 ||
		before.RSSAnon <= 0 || before.RSSFile <= 0 || before.RSSAnon+before.RSSFile > before.RSS {
		t.Fatalf("implausible figures for this process: %+v", before)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.FDs != before.FDs+1 {
		t.Errorf("fds %d after opening one file, want %d", after.FDs, before.FDs+1)
	}
	if _, err := ReadProc(1 << 30); err == nil {
		t.Error("ReadProc of a pid that cannot exist succeeded")
	}
}

func TestGoroutinesFromPprof(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	good := httptest.NewServer(mux)
	defer good.Close()
	n, err := Goroutines(context.Background(), good.Client(), strings.TrimPrefix(good.URL, "http://"))
	if err != nil || n < 2 {
		t.Errorf("Goroutines = %d, %v; want this process's count", n, err)
	}
	addr := strings.TrimPrefix(good.URL, "http://")
	before, err := GoroutineStacks(context.Background(), good.Client(), addr)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	parked := make(chan struct{}, 3)
	for range 3 {
		go parkForTest(release, parked)
	}
	for range 3 {
		<-parked
	}
	after, err := GoroutineStacks(context.Background(), good.Client(), addr)
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	growth := StackGrowth(before, after)
	found := false
	for _, g := range growth {
		if strings.HasPrefix(g, "+3 ") && strings.Contains(g, "soak.parkForTest") {
			found = true
		}
	}
	if !found {
		t.Errorf("StackGrowth did not show the 3 parked goroutines: %q", growth)
	}

	bad := httptest.NewServer(http.NotFoundHandler())
	defer bad.Close()
	if _, err := Goroutines(context.Background(), bad.Client(), strings.TrimPrefix(bad.URL, "http://")); err == nil {
		t.Error("a 404 page was taken for a goroutine profile")
	}
}

func payloadServer(t *testing.T) *httptest.Server {
	t.Helper()
	ps, err := payload.New(payload.Config{MinSize: 1, MaxSize: 1 << 20, MaxUpload: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewServer(ps)
	t.Cleanup(s.Close)
	return s
}

func TestLoadCountsEveryOutcome(t *testing.T) {
	mix, err := ParseMix("1k-get:5,64k-get:2,1m-get:1,1m-post:1")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, url string, cfg LoadConfig) *Load {
		t.Helper()
		cfg.BaseURL, cfg.Mix, cfg.Conns = url, mix, 4
		l, done, err := StartLoad(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("the load did not stop by itself")
		}
		return l
	}

	t.Run("all good", func(t *testing.T) {
		l := run(t, payloadServer(t).URL, LoadConfig{Requests: 90, VerifyEvery: 1})
		if l.Done.Load() != 90 || l.OK.Load() != 90 || l.Non2xx.Load()+l.SocketErrors.Load()+l.BadBodies.Load() != 0 {
			t.Errorf("done %d ok %d non2xx %d socket %d bad %d: %q", l.Done.Load(), l.OK.Load(), l.Non2xx.Load(), l.SocketErrors.Load(), l.BadBodies.Load(), l.Failures())
		}
		// 10 blocks of the mix: 50×1 KiB + 20×64 KiB + 10×1 MiB + 10×1 KiB down, 10×1 MiB up.
		if in, want := l.BytesIn.Load(), int64(60<<10+20<<16+10<<20); in != want {
			t.Errorf("bytes in %d, want %d", in, want)
		}
		if out := l.BytesOut.Load(); out != 10<<20 {
			t.Errorf("bytes out %d, want %d", out, 10<<20)
		}
		if lat := l.Latencies(); len(lat) != 4 || lat[0].N != 50 || lat[0].Max <= 0 || lat[0].P99 > lat[0].Max {
			t.Errorf("latencies %+v", lat)
		}
	})

	t.Run("non-2xx", func(t *testing.T) {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, "down", http.StatusServiceUnavailable)
		}))
		defer s.Close()
		l := run(t, s.URL, LoadConfig{Requests: 20})
		if l.Non2xx.Load() != 20 || l.OK.Load() != 0 || l.Statuses()[503] != 20 {
			t.Errorf("non2xx %d ok %d statuses %v", l.Non2xx.Load(), l.OK.Load(), l.Statuses())
		}
	})

	t.Run("socket errors", func(t *testing.T) {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// Promise a body, send part of it, hang up.
			w.Header().Set("Content-Length", "1024")
			_, _ = io.WriteString(w, "0123")
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
		}))
		defer s.Close()
		l := run(t, s.URL, LoadConfig{Requests: 20})
		if l.SocketErrors.Load() != 20 || l.OK.Load() != 0 {
			t.Errorf("socket errors %d ok %d: %q", l.SocketErrors.Load(), l.OK.Load(), l.Failures())
		}
	})

	t.Run("wrong bodies", func(t *testing.T) {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, strings.Repeat("x", 1024))
		}))
		defer s.Close()
		l := run(t, s.URL, LoadConfig{Requests: 18, VerifyEvery: 1})
		if l.BadBodies.Load() != 18 || l.OK.Load() != 0 {
			t.Errorf("bad bodies %d ok %d: %q", l.BadBodies.Load(), l.OK.Load(), l.Failures())
		}
	})

	t.Run("duration bound", func(t *testing.T) {
		start := time.Now()
		l := run(t, payloadServer(t).URL, LoadConfig{Duration: 300 * time.Millisecond})
		if l.Done.Load() == 0 || l.SocketErrors.Load() != 0 || time.Since(start) > 10*time.Second {
			t.Errorf("done %d socket errors %d after %v", l.Done.Load(), l.SocketErrors.Load(), time.Since(start))
		}
	})

	t.Run("loopback only", func(t *testing.T) {
		_, _, err := StartLoad(context.Background(), LoadConfig{BaseURL: "http://example.com", Conns: 1, Requests: 1, Mix: mix})
		if err == nil {
			t.Error("a load against a non-loopback address was started")
		}
	})
}

// parkForTest is a goroutine with a stack the profile test can recognise.
func parkForTest(release <-chan struct{}, parked chan<- struct{}) {
	parked <- struct{}{}
	<-release
}
