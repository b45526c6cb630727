package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/; `go test` runs them as
// regular tests. Fuzz longer with e.g.
//
//	go test ./checks/config/ -run '^$' -fuzz FuzzParseYAML -fuzztime 20s

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("checks:\n  - {name: a, type: tcp, target: \"h:1\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseYAML("fuzz.yaml", data, secretResolver{baseDir: "testdata", lookup: lookupTestEnv})
		checkParseResult(t, data, file, err)
	})
}

func FuzzParseLegacyJSON(f *testing.F) {
	f.Add([]byte(`{"HeartbeatIntervalSeconds": 30, "Urls": ["http://h/"], "TcpEndpoints": ["h:1"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseLegacy("fuzz.yaml", data)
		checkParseResult(t, data, file, err)
	})
}

var sentinels = []error{ErrRead, ErrSyntax, ErrUnknownField, ErrWrongType, ErrMissingField, ErrDuplicate, ErrInvalidValue, ErrSecret}

// checkParseResult asserts the invariants of any parse: a valid File or an
// error, never both; a File passes Validate with unique names and compiled
// regexps; every error line is in the fixed format, wraps a sentinel, and
// holds no secret the input did not contain.
func checkParseResult(t *testing.T, data []byte, f *File, err error) {
	t.Helper()
	if err != nil {
		if f != nil {
			t.Fatal("File returned with an error")
		}
		for line := range strings.SplitSeq(err.Error(), "\n") {
			if !strings.HasPrefix(line, "fuzz.yaml") {
				t.Fatalf("error line not in the fixed format: %q", line)
			}
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("not an *Error: %v", err)
		}
		kind := false
		for _, s := range sentinels {
			kind = kind || errors.Is(err, s)
		}
		if !kind {
			t.Fatalf("wraps no sentinel: %v", err)
		}
		if strings.Contains(err.Error(), yamlParserPanicMsg) {
			t.Fatalf("the YAML parser panicked: %v", err)
		}
		for _, secret := range testEnv {
			if !bytes.Contains(data, []byte(secret)) && strings.Contains(err.Error(), secret) {
				t.Fatalf("error reveals a secret: %v", err)
			}
		}
		return
	}
	if f == nil {
		t.Fatal("nil File and nil error")
	}
	if err := f.Validate(); err != nil {
		t.Fatalf("parsed file fails Validate: %v", err)
	}
	for i := range f.Checks {
		c := &f.Checks[i]
		if c.Timeout <= 0 || c.Timeout >= c.Interval || c.Interval < MinInterval {
			t.Fatalf("check %d: timing %v/%v", i, c.Timeout, c.Interval)
		}
		if c.Type == TypeHTTP && (c.HTTP.Method == "" || (!c.HTTP.NoFollowRedirects && c.HTTP.MaxRedirects < 1)) {
			t.Fatalf("check %d: http defaults missing: %+v", i, c.HTTP)
		}
		if c.Type == TypeDNS && c.DNS.RecordType == "" {
			t.Fatalf("check %d: record type missing", i)
		}
		for _, m := range c.HTTP.HeaderMatches {
			if m.Regexp == nil {
				t.Fatalf("check %d: nil header regexp", i)
			}
		}
		if c.DisplayTarget() != c.Target && c.Type != TypeHTTP {
			t.Fatalf("check %d: non-URL target changed by DisplayTarget", i)
		}
	}
}
