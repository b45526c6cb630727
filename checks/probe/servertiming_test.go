package probe

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseServerTiming(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"", 0, false},
		{"app;dur=12", 12 * ms, true},
		{"app;dur=12.5", 12500 * time.Microsecond, true},
		{"app;dur=0", 0, true},
		{"App;DUR=3", 3 * ms, true},
		{" app ; dur = 7 ", 7 * ms, true},
		{`app;dur="8.25"`, 8250 * time.Microsecond, true},
		{"db;dur=5, app;dur=12.5", 12500 * time.Microsecond, true},
		{"total;dur=40, app;dur=12", 12 * ms, true},     // app wins over larger
		{"app;dur=1, app;dur=2", 1 * ms, true},          // first app wins
		{"db;dur=5, cache;dur=9, x", 9 * ms, true},      // no app: largest
		{"app, db;dur=5", 5 * ms, true},                 // app without dur ignored
		{"app;dur=abc, db;dur=4", 4 * ms, true},         // unparsable dur ignored
		{"app;dur=-1", 0, false},                        // negative
		{"app;dur=NaN", 0, false},                       // not finite
		{"app;dur=Inf", 0, false},                       // not finite
		{"app;dur=1e300", 0, false},                     // absurd
		{"app;dur=86400001", 0, false},                  // > 24h
		{"app;dur=86400000", 24 * time.Hour, true},      // exactly 24h
		{"app;dur", 0, false},                           // no value
		{"app;dur=3;dur=9", 3 * ms, true},               // first dur param wins
		{`app;desc="a, b; dur=99";dur=2`, 2 * ms, true}, // separators inside quotes
		{`app;desc="say \"hi\", ok";dur=6`, 6 * ms, true},
		{"miss, db;dur=0.5", 500 * time.Microsecond, true},
		{`;dur=5`, 0, false}, // no metric name
		{",,,", 0, false},
		{`app;desc="unterminated, dur=5`, 0, false},
		{"cpu;dur=2.2,app;dur=3.3", 3300 * time.Microsecond, true},
	}
	for _, tc := range tests {
		got, ok := parseServerTiming(tc.header)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseServerTiming(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzParseServerTiming checks that any header parses without panicking to
// a duration within bounds, and that a well-formed app entry survives being
// surrounded by arbitrary other metrics.
func FuzzParseServerTiming(f *testing.F) {
	for _, s := range []string{
		"app;dur=12.5",
		"db;dur=5, app;dur=12.5",
		`app;desc="a, b";dur=3`,
		"cache;desc=hit, db;dur=2.1, total;dur=9",
		`x;desc="\"";dur=1`,
		"app;dur=-1",
		"app;dur=1e309",
		"",
	} {
		f.Add(s, 12.5)
	}
	f.Fuzz(func(t *testing.T, header string, ms float64) {
		d, ok := parseServerTiming(header)
		if ok && (d < 0 || d > maxServerTiming) {
			t.Fatalf("parseServerTiming(%q) = %v out of [0, %v]", header, d, maxServerTiming)
		}
		if !ok && d != 0 {
			t.Fatalf("parseServerTiming(%q) = %v with ok false", header, d)
		}
		if math.IsNaN(ms) || ms < 0 || ms > 1e6 {
			return
		}
		// A header that cannot leak into the next metric (no quote left
		// open, no stray app) keeps our app entry's value.
		if strings.Contains(header, `"`) || strings.Contains(strings.ToLower(header), "app") {
			return
		}
		combined := fmt.Sprintf("%s, app;dur=%g", header, ms)
		got, ok := parseServerTiming(combined)
		want := time.Duration(math.Round(ms * float64(time.Millisecond)))
		if !ok || got != want {
			t.Fatalf("parseServerTiming(%q) = %v, %v; want %v", combined, got, ok, want)
		}
	})
}
