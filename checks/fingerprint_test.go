package checks

import (
	"net/url"
	"testing"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// TestFingerprintSeesProxyPassword requires a changed proxy password to
// count as a changed check, so a reload picks it up.
func TestFingerprintSeesProxyPassword(t *testing.T) {
	withPassword := func(pw string) *config.Check {
		c := config.Check{Name: "a", Type: config.TypeHTTP, Target: "http://example.com/",
			HTTP: config.HTTPOptions{ProxyURL: (*config.ProxyURL)(&url.URL{Scheme: "http", User: url.UserPassword("u", pw), Host: "proxy:3128"})}}
		c.ApplyDefaults()
		return &c
	}
	if fingerprint(withPassword("one")) == fingerprint(withPassword("two")) {
		t.Error("checks differing only in the proxy password have one fingerprint")
	}
	if fingerprint(withPassword("one")) != fingerprint(withPassword("one")) {
		t.Error("the same check has two fingerprints")
	}
}
