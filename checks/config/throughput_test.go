package config

import (
	"errors"
	"strings"
	"testing"
)

func TestThroughputOptions(t *testing.T) {
	t.Parallel()
	f, err := parse("t.yaml", []byte("checks:\n  - name: a\n    type: throughput\n    target: https://peer:8443/base/\n"), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := f.Checks[0]
	if c.Throughput.Direction != DirectionBoth || c.Throughput.Bytes != DefaultThroughputBytes || c.Throughput.MinBitsPerSecond != 0 {
		t.Errorf("defaults: %+v", c.Throughput)
	}
	if c.Throughput.URL == nil || c.Throughput.URL.Path != "/base/" || c.URL != nil {
		t.Errorf("URL %v, Check.URL %v: the base URL belongs to the throughput block", c.Throughput.URL, c.URL)
	}
	if c.Server != (HostPort{"peer", 8443}) || !c.UsesTLS() || !c.Exclusive() {
		t.Errorf("server %v, TLS %v, exclusive %v", c.Server, c.UsesTLS(), c.Exclusive())
	}
	if (&Check{Type: TypeHTTP}).Exclusive() {
		t.Error("http checks are not exclusive")
	}

	for _, tc := range []struct{ body, want string }{
		{"direction: sideways", `t.yaml:5: checks[0].throughput.direction: unknown direction "sideways" (want download, upload or both)`},
		{"bytes: 0", "t.yaml:5: checks[0].throughput.bytes: must be between 1 and 1073741824"},
		{"bytes: 2000000000", "t.yaml:5: checks[0].throughput.bytes: must be between 1 and 1073741824"},
		{"min_bits_per_second: -1", "t.yaml:5: checks[0].throughput.min_bits_per_second: must not be negative"},
	} {
		src := "checks:\n  - name: a\n    type: throughput\n    target: http://peer:8080\n    throughput: {" + tc.body + "}\n"
		_, err := parse("t.yaml", []byte(src), lookupTestEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: error %v, want %q", tc.body, err, tc.want)
		}
	}
	// The block on another type is reported.
	src := "checks:\n  - name: a\n    type: tcp\n    target: peer:1\n    throughput: {bytes: 10}\n"
	if _, err := parse("t.yaml", []byte(src), lookupTestEnv); err == nil || !strings.Contains(err.Error(), "checks[0].throughput") {
		t.Errorf("throughput block on a tcp check: %v", err)
	}
}
