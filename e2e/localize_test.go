//go:build e2e

package e2e

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func TestLocalizeFluentBit(t *testing.T) {
	conf := `[SERVICE]
    HTTP_Listen   0.0.0.0
    HTTP_Port     2020
    storage.path  /var/fluent-bit/state/flb-storage/
    # Port 4318 in a comment stays
[INPUT]
    Name          opentelemetry
    Port          4318
[INPUT]
    Name          tail
    Path          /var/log/containers/*_*_heartbeat-*.log
    DB            /var/fluent-bit/state/tail.db
[OUTPUT]
    Port          ${LOG_STORE_PORT}
    Logs_uri      /v1/logs
`
	got, dirs, err := localizeFluentBit(conf, "/w", map[string]int{"Port": 4318, "HTTP_Port": 2020}, map[string]int{"Port": 1111, "HTTP_Port": 2222})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"    HTTP_Listen   127.0.0.1\n", "    HTTP_Port     2222\n", "    storage.path  /w/var/fluent-bit/state/flb-storage/\n",
		"    # Port 4318 in a comment stays\n", "    Port          1111\n", "    Path          /w/var/log/containers/*_*_heartbeat-*.log\n",
		"    DB            /w/var/fluent-bit/state/tail.db\n", "    Port          ${LOG_STORE_PORT}\n", "    Logs_uri      /v1/logs\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("localized config lacks %q:\n%s", want, got)
		}
	}
	if want := "[/w/var/fluent-bit/state /w/var/fluent-bit/state/flb-storage /w/var/log/containers]"; strings.Join(dirs, " ") != strings.Trim(want, "[]") {
		t.Errorf("dirs = %v, want %s", dirs, want)
	}
	if _, _, err := localizeFluentBit(strings.Replace(conf, "Port          4318", "Port          4317", 1), "/w", map[string]int{"Port": 4318}, map[string]int{"Port": 1}); err == nil {
		t.Error("a config without the port to replace was accepted")
	}
}

func TestCRIWriter(t *testing.T) {
	var out, raw bytes.Buffer
	w := &criWriter{out: &out}
	long := strings.Repeat("x", criMaxLine+10)
	w.copy(strings.NewReader("short line\n"+long+"\nlast without newline"), "stdout", &raw)
	if raw.String() != "short line\n"+long+"\nlast without newline" {
		t.Errorf("raw copy differs: %d bytes", raw.Len())
	}
	entry := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z stdout ([PF]) (.*)$`)
	var tags, lines []string
	for l := range strings.Lines(out.String()) {
		m := entry.FindStringSubmatch(strings.TrimSuffix(l, "\n"))
		if m == nil {
			t.Fatalf("not a CRI log entry: %.80q", l)
		}
		tags, lines = append(tags, m[2]), append(lines, m[3])
	}
	if strings.Join(tags, "") != "FPFF" {
		t.Fatalf("tags %v, want F P F F (the long line split at %d bytes)", tags, criMaxLine)
	}
	if lines[0] != "short line" || lines[1]+lines[2] != long || len(lines[1]) != criMaxLine || lines[3] != "last without newline" {
		t.Errorf("entries %q…", lines[0])
	}
}
