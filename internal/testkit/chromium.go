package testkit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// chromiumFlags run Debian's Chromium headless as root, with nothing
// reaching beyond the page asked for.
func chromiumFlags() []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
	}
}

// Chromium runs one headless Chromium with a new empty profile at profile
// (removed first) and returns its standard output, within 45 s.
func Chromium(ctx context.Context, profile string, args ...string) ([]byte, error) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		return nil, fmt.Errorf("chromium not installed (make status-browser installs Debian's chromium): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := os.RemoveAll(profile); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, browser, append(append(chromiumFlags(), "--user-data-dir="+profile), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
		return nil, fmt.Errorf("chromium %s: %w; stderr: %s", strings.Join(args, " "), err,
			strings.Join(lines[max(0, len(lines)-5):], "\n"))
	}
	return stdout.Bytes(), nil
}
