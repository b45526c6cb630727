package soak

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pprofServer serves this process's pprof handlers, as the heartbeat admin
// listener does.
func pprofServer(t *testing.T) (*http.Client, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s.Client(), strings.TrimPrefix(s.URL, "http://")
}

func TestReadMemStatsFromPprof(t *testing.T) {
	c, addr := pprofServer(t)
	ctx := context.Background()
	before, err := ReadMemStats(ctx, c, addr, false)
	if err != nil {
		t.Fatal(err)
	}
	if before.HeapAlloc == 0 || before.HeapInuse < before.HeapAlloc || before.Sys < before.HeapInuse || before.StackInuse == 0 {
		t.Errorf("implausible figures for this process: %+v", before)
	}
	after, err := ReadMemStats(ctx, c, addr, true)
	if err != nil {
		t.Fatal(err)
	}
	if after.NumForcedGC <= before.NumForcedGC {
		t.Errorf("NumForcedGC %d after ?gc=1, was %d: no GC was forced", after.NumForcedGC, before.NumForcedGC)
	}

	bad := httptest.NewServer(http.NotFoundHandler())
	defer bad.Close()
	if _, err := ReadMemStats(ctx, bad.Client(), strings.TrimPrefix(bad.URL, "http://"), false); err == nil {
		t.Error("a 404 page was taken for a heap profile")
	}
}

func TestParseMemStats(t *testing.T) {
	const good = `heap profile: 1: 2 [3: 4] @ heap/1048576
# runtime.MemStats
# Alloc = 100
# Sys = 9000
# HeapAlloc = 100
# HeapIdle = 3000
# HeapInuse = 400
# HeapReleased = 1000
# Stack = 200 / 300
# NumGC = 7
# NumForcedGC = 2
`
	tests := []struct {
		name    string
		in      string
		want    MemStats
		wantErr error  // errors.Is
		errText string // or a substring
	}{
		{name: "good", in: good, want: MemStats{HeapAlloc: 100, HeapInuse: 400, HeapIdle: 3000, HeapReleased: 1000, StackInuse: 200, Sys: 9000, NumGC: 7, NumForcedGC: 2}},
		{name: "no trailer", in: "heap profile: 1: 2 [3: 4] @ heap/1048576\n", wantErr: ErrNoMemStats},
		{name: "trailer cut short", in: good[:strings.Index(good, "# Stack")], wantErr: ErrNoMemStats},
		{name: "not a number", in: strings.Replace(good, "# HeapIdle = 3000", "# HeapIdle = lots", 1), errText: `HeapIdle = "lots"`},
		{name: "released above idle", in: strings.Replace(good, "# HeapReleased = 1000", "# HeapReleased = 5000", 1), errText: "HeapReleased 5000 > HeapIdle 3000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemStats(strings.NewReader(tt.in))
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Errorf("error %v, want one naming %q", err, tt.errText)
				}
			case err != nil:
				t.Fatal(err)
			case got != tt.want:
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if m, _ := parseMemStats(strings.NewReader(good)); m.HeapRetainedFree() != 2000 {
		t.Errorf("HeapRetainedFree = %d, want HeapIdle − HeapReleased = 2000", m.HeapRetainedFree())
	}
}

func TestSaveHeapProfile(t *testing.T) {
	c, addr := pprofServer(t)
	path := filepath.Join(t.TempDir(), "heap.pb.gz")
	if err := SaveHeapProfile(context.Background(), c, addr, path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("%s is not a gzipped profile: starts %q", path, b[:min(len(b), 16)])
	}
	if err := SaveHeapProfile(context.Background(), c, addr, filepath.Join(t.TempDir(), "missing", "heap.pb.gz")); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
}

func TestReadFloor(t *testing.T) {
	const ms = time.Millisecond
	// seq reads the values in order, then the last one again and again.
	seq := func(vs ...int64) func() (int64, error) {
		i := 0
		return func() (int64, error) {
			v := vs[min(i, len(vs)-1)]
			i++
			return v, nil
		}
	}
	falling := func() func() (int64, error) { // by 10 % a reading: never two alike
		v := int64(1 << 40)
		return func() (int64, error) { v -= v / 10; return v, nil }
	}
	errRead := errors.New("read failed")
	tests := []struct {
		name     string
		cfg      FloorConfig
		read     func() (int64, error)
		want     int64
		wantOK   bool
		readings int // 0: any
		wantErr  error
	}{
		{name: "a burst does not decide it", cfg: FloorConfig{Interval: ms, Window: ms, Tolerance: 0.01, Bound: time.Second},
			read: seq(150, 100, 160, 101), want: 100, wantOK: true, readings: 4},
		{name: "a lone low reading is passed over", cfg: FloorConfig{Interval: ms, Window: ms, Tolerance: 0.01, Bound: time.Second},
			read: seq(150, 90, 100, 120, 100), want: 100, wantOK: true, readings: 5},
		{name: "tolerance is relative to the floor", cfg: FloorConfig{Interval: ms, Window: ms, Tolerance: 0.05, Bound: time.Second},
			read: seq(1000, 1060, 1049), want: 1000, wantOK: true, readings: 3},
		{name: "never agrees", cfg: FloorConfig{Interval: ms, Window: ms, Tolerance: 0.01, Bound: 30 * ms},
			read: falling(), wantOK: false},
		{name: "zero tolerance wants equal readings", cfg: FloorConfig{Interval: ms, Window: ms, Bound: time.Second},
			read: seq(100, 101, 102, 101), want: 101, wantOK: true, readings: 4},
		{name: "read error", cfg: FloorConfig{Interval: ms, Window: ms, Tolerance: 0.01, Bound: time.Second},
			read: func() (int64, error) { return 0, errRead }, wantErr: errRead},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ReadFloor(context.Background(), tt.cfg, tt.read)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.OK != tt.wantOK || (tt.want != 0 && f.Value != tt.want) || (tt.readings != 0 && len(f.Readings) != tt.readings) {
				t.Errorf("got %+v, want value %d ok %v after %d readings", f, tt.want, tt.wantOK, tt.readings)
			}
			if !f.OK && f.Value != minOf(f.Readings) {
				t.Errorf("value %d is not the smallest of %v", f.Value, f.Readings)
			}
		})
	}

	t.Run("reads for the whole window", func(t *testing.T) {
		start := time.Now()
		cfg := FloorConfig{Interval: 2 * ms, Window: 40 * ms, Tolerance: 0.01, Bound: time.Second}
		f, err := ReadFloor(context.Background(), cfg, seq(7))
		if err != nil || !f.OK || f.Value != 7 {
			t.Fatalf("got %+v, %v", f, err)
		}
		if took := time.Since(start); took < cfg.Window {
			t.Errorf("agreed readings ended it after %v, before the %v window", took, cfg.Window)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ReadFloor(ctx, FloorConfig{Interval: ms, Window: time.Second, Tolerance: 0.01, Bound: time.Minute}, seq(1))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v, want context.Canceled", err)
		}
	})

	for _, cfg := range []FloorConfig{
		{Interval: 0, Window: ms, Bound: ms},
		{Interval: 2 * ms, Window: ms, Bound: time.Second},
		{Interval: ms, Window: time.Second, Bound: ms},
		{Interval: ms, Window: ms, Bound: ms, Tolerance: -0.1},
	} {
		if _, err := ReadFloor(context.Background(), cfg, seq(1)); err == nil {
			t.Errorf("ReadFloor accepted %+v", cfg)
		}
	}
}

func minOf(v []int64) int64 {
	m := v[0]
	for _, x := range v[1:] {
		m = min(m, x)
	}
	return m
}
