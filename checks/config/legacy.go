package config

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tailscale/hujson"
)

// Keys of the legacy GoHeartbeat file. Like GoHeartbeat's encoding/json decode,
// they match case-insensitively.
const (
	legacyInterval  = "HeartbeatIntervalSeconds"
	legacyURLs      = "Urls"
	legacyEndpoints = "TcpEndpoints"
	legacyTimeout   = "TimeoutSeconds"
)

// legacyMaxSeconds bounds the legacy interval (a year): far beyond any use,
// and far from overflowing a time.Duration.
const legacyMaxSeconds = 365 * 24 * 60 * 60

var hujsonErrRE = regexp.MustCompile(`(?s)^hujson: line (\d+), column (\d+): (.*)$`)

// parseLegacy reads the GoHeartbeat file: a hujson object with the four keys
// above. The interval and both lists are required (as in GoHeartbeat); empty
// lists are fine. TimeoutSeconds defaults to 5, or half the interval when
// the interval is 5 s or less. Each URL becomes an http check named by the
// URL (password redacted), each endpoint a tcp check named by the endpoint.
//
// The hujson syntax tree is walked directly, instead of Standardize plus
// json.Decoder: encoding/json reports unknown fields without an offset, and
// every error here must carry its line.
func parseLegacy(path string, data []byte) (*File, error) {
	l := newErrList(path)
	lineAt := func(off int) int { return 1 + bytes.Count(data[:min(max(off, 0), len(data))], []byte("\n")) }

	v, err := hujson.Parse(data)
	if err != nil {
		line, msg := 0, err.Error()
		if m := hujsonErrRE.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[3] + " (column " + m[2] + ")"
		}
		l.add(line, "", ErrSyntax, "invalid JSON: %s", msg)
		return nil, l.err()
	}
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		l.add(lineAt(v.StartOffset), "", ErrWrongType, "must be a JSON object")
		return nil, l.err()
	}

	known := []string{legacyInterval, legacyURLs, legacyEndpoints, legacyTimeout}
	members := map[string]*hujson.ObjectMember{}
	for i := range obj.Members {
		m := &obj.Members[i]
		lit, _ := m.Name.Value.(hujson.Literal) // the grammar allows only strings here
		name := lit.String()
		line := lineAt(m.Name.StartOffset)
		key := ""
		for _, k := range known {
			if strings.EqualFold(k, name) {
				key = k
			}
		}
		switch {
		case key == "":
			l.add(line, jsonField(name), ErrUnknownField, "unknown field%s", suggest(name, known))
		case members[key] != nil:
			l.add(line, jsonField(name), ErrDuplicate, "duplicate key (first at line %d)", lineAt(members[key].Name.StartOffset))
		default:
			members[key] = m
		}
	}

	objLine := lineAt(v.StartOffset)
	intField := func(key string, lo, hi int) (int, int, bool) {
		m := members[key]
		if m == nil {
			return 0, objLine, false
		}
		line := lineAt(m.Value.StartOffset)
		lit, ok := m.Value.Value.(hujson.Literal)
		var n int
		if !ok || lit.Kind() != '0' || json.Unmarshal(lit, &n) != nil {
			l.add(line, key, ErrWrongType, "must be a whole number of seconds")
			return 0, line, false
		}
		if n < lo || n > hi {
			l.add(line, key, ErrInvalidValue, "must be between %d and %d", lo, hi)
			return 0, line, false
		}
		return n, line, true
	}
	type item struct {
		value string
		line  int
	}
	listField := func(key string) []item {
		m := members[key]
		if m == nil {
			l.add(objLine, key, ErrMissingField, "required (use [] for none)")
			return nil
		}
		arr, ok := m.Value.Value.(*hujson.Array)
		if !ok {
			l.add(lineAt(m.Value.StartOffset), key, ErrWrongType, "must be a list of strings (use [] for none)")
			return nil
		}
		items := make([]item, 0, len(arr.Elements))
		for i, e := range arr.Elements {
			lit, ok := e.Value.(hujson.Literal)
			if !ok || lit.Kind() != '"' {
				l.add(lineAt(e.StartOffset), indexPath(key, i), ErrWrongType, "must be a string")
				continue
			}
			items = append(items, item{lit.String(), lineAt(e.StartOffset)})
		}
		return items
	}

	interval, _, intervalOK := intField(legacyInterval, 1, legacyMaxSeconds)
	if members[legacyInterval] == nil {
		l.add(objLine, legacyInterval, ErrMissingField, "required")
	}
	if !intervalOK {
		// Reported above; go on with the default so the lists still get checked.
		interval = int(DefaultInterval / time.Second)
	}
	urls := listField(legacyURLs)
	endpoints := listField(legacyEndpoints)
	timeout := inheritedTimeout(DefaultTimeout, time.Duration(interval)*time.Second)
	if members[legacyTimeout] != nil {
		t, line, ok := intField(legacyTimeout, 1, legacyMaxSeconds)
		switch {
		case ok && intervalOK && t >= interval:
			l.add(line, legacyTimeout, ErrInvalidValue, "must be less than %s (%d)", legacyInterval, interval)
		case ok:
			timeout = time.Duration(t) * time.Second
		}
	}
	f := &File{Path: path, Checks: make([]Check, 0, len(urls)+len(endpoints))}
	type origin struct {
		field string
		line  int
	}
	origins := make([]origin, 0, cap(f.Checks))
	add := func(typ, name, target string, o origin) {
		c := Check{
			Name:             name,
			Type:             typ,
			Target:           target,
			Interval:         time.Duration(interval) * time.Second,
			Timeout:          timeout,
			Jitter:           DefaultJitter,
			FailureThreshold: DefaultFailureThreshold,
			SuccessThreshold: DefaultSuccessThreshold,
		}
		c.ApplyDefaults()
		f.Checks = append(f.Checks, c)
		origins = append(origins, o)
	}
	for i, u := range urls {
		add(TypeHTTP, RedactURL(u.value), u.value, origin{indexPath(legacyURLs, i), u.line})
	}
	for i, e := range endpoints {
		add(TypeTCP, e.value, e.value, origin{indexPath(legacyEndpoints, i), e.line})
	}

	// The generated checks get the same validation as YAML ones; every
	// finding is about the list entry that produced the check.
	seen := map[string]origin{}
	for i := range f.Checks {
		c, o := &f.Checks[i], origins[i]
		reported := map[string]bool{}
		for _, p := range c.problems() {
			if !reported[p.msg] {
				reported[p.msg] = true
				l.add(o.line, o.field, p.kind, "%s", p.msg)
			}
		}
		if first, dup := seen[c.Name]; dup {
			l.add(o.line, o.field, ErrDuplicate, "duplicate entry (first at line %d)", first.line)
		} else {
			seen[c.Name] = o
		}
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// jsonField names an unknown legacy key in errors.
func jsonField(name string) string {
	if plainKey(name) {
		return name
	}
	return strconv.Quote(name)
}

// looksLikeYAMLAsJSON reports whether data is a JSON object with a "checks"
// or "defaults" key: the YAML format written as JSON (valid YAML), which the
// legacy format never contains.
func looksLikeYAMLAsJSON(data []byte) bool {
	v, err := hujson.Parse(data)
	if err != nil {
		return false
	}
	obj, ok := v.Value.(*hujson.Object)
	if !ok {
		return false
	}
	for _, m := range obj.Members {
		if lit, ok := m.Name.Value.(hujson.Literal); ok {
			if name := lit.String(); name == "checks" || name == "defaults" {
				return true
			}
		}
	}
	return false
}
