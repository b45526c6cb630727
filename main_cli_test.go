package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpFlagShowsCommands: -h and --help before any command list the
// commands, as `heartbeat help` does, not only serve's flags.
func TestHelpFlagShowsCommands(t *testing.T) {
	var want bytes.Buffer
	usage(&want)
	for _, arg := range []string{"-h", "--help", "-help", "help"} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errb); code != exitOK {
			t.Errorf("heartbeat %s: exit %d, want 0 (stderr %q)", arg, code, errb.String())
		}
		if out.String() != want.String() {
			t.Errorf("heartbeat %s printed\n%s\nwant the command list:\n%s", arg, out.String()+errb.String(), want.String())
		}
	}
	// A command's own -h still shows its flags.
	var out, errb bytes.Buffer
	run(context.Background(), []string{"serve", "-h"}, &out, &errb)
	if !strings.Contains(errb.String(), "usage: heartbeat serve [flags]") || !strings.Contains(errb.String(), "-listen") {
		t.Errorf("heartbeat serve -h printed %q", errb.String())
	}
}

func TestValidateCountsInWords(t *testing.T) {
	dir := t.TempDir()
	for n, want := range map[int]string{0: "OK, 0 checks", 1: "OK, 1 check", 2: "OK, 2 checks"} {
		body := "checks:\n"
		if n == 0 {
			body = "checks: []\n"
		}
		for i := range n {
			body += "  - {name: c" + string(rune('a'+i)) + ", type: tcp, target: \"127.0.0.1:1\"}\n"
		}
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"validate", "--config", p}, &out, &errb); code != exitOK {
			t.Fatalf("validate: exit %d: %s", code, errb.String())
		}
		if got := out.String(); got != p+": "+want+"\n" {
			t.Errorf("validate with %d checks printed %q, want %q", n, got, p+": "+want+"\n")
		}
	}
}
