package probe

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// serverTimingApp is the metric name heartbeat's own payload server uses
// (`Server-Timing: app;dur=<ms>`).
const serverTimingApp = "app"

// maxServerTiming bounds an accepted dur; anything larger is nonsense from
// the peer and would overflow time.Duration arithmetic downstream.
const maxServerTiming = 24 * time.Hour

// parseServerTiming extracts the server's own processing time from a
// Server-Timing header value (several header lines joined with ", "). The
// first metric named "app" wins, because that is what heartbeat sidecars send
// and it is meant to be the whole server time; without one, the largest dur
// is taken, since metrics usually nest (db inside app inside total) and the
// largest is the best estimate of the time spent in the server. Entries with
// a missing, negative, non-finite or absurd (> 24h) dur are ignored; ok is
// false when no entry has a usable dur.
func parseServerTiming(header string) (time.Duration, bool) {
	var (
		best     time.Duration
		found    bool
		appFound bool
		appDur   time.Duration
	)
	for _, metric := range splitUnquoted(header, ',') {
		params := splitUnquoted(metric, ';')
		name := strings.TrimSpace(params[0])
		if name == "" {
			continue
		}
		d, ok := metricDur(params[1:])
		if !ok {
			continue
		}
		if !appFound && strings.EqualFold(name, serverTimingApp) {
			appFound, appDur = true, d
		}
		if !found || d > best {
			best, found = d, true
		}
	}
	if appFound {
		return appDur, true
	}
	return best, found
}

// metricDur returns the first dur parameter of one metric, per the spec
// (later duplicates are ignored).
func metricDur(params []string) (time.Duration, bool) {
	for _, p := range params {
		k, v, hasValue := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(k), "dur") {
			continue
		}
		if !hasValue {
			return 0, false
		}
		v = unquote(strings.TrimSpace(v))
		ms, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(ms) || math.IsInf(ms, 0) || ms < 0 ||
			ms > float64(maxServerTiming/time.Millisecond) {
			return 0, false
		}
		return time.Duration(math.Round(ms * float64(time.Millisecond))), true
	}
	return 0, false
}

// splitUnquoted splits s on sep outside quoted-strings (RFC 9110 5.6.4),
// honouring backslash escapes inside quotes. It always returns at least one
// element.
func splitUnquoted(s string, sep byte) []string {
	var (
		parts   []string
		start   int
		inQuote bool
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inQuote && c == '\\':
			i++ // skip the escaped byte
		case c == '"':
			inQuote = !inQuote
		case !inQuote && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// unquote strips a quoted-string's quotes and escapes; other values pass
// through unchanged.
func unquote(v string) string {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	var b strings.Builder
	for i := 1; i < len(v)-1; i++ {
		if v[i] == '\\' && i+1 < len(v)-1 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}
