package checks

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

func TestStatusHandler(t *testing.T) {
	h := newHarness(t, nil, func(_ context.Context, tg probe.Target) probe.Result {
		if tg.Check.Name == "broken" {
			return probe.Result{ErrorType: probe.ErrStatusCode, Reason: "status code 503, want 2xx", StatusCode: 503}
		}
		return probe.Result{Success: true, Message: tg.Check.DisplayTarget() + ": 200 OK", StatusCode: 200}
	})
	ok := schedCheck("api", 10*time.Millisecond)
	ok.Type, ok.Target = config.TypeHTTP, "http://probe:hunter2@127.0.0.1:9/heartbeat/1"
	broken := schedCheck("broken", 10*time.Millisecond)
	h.apply(ok, broken)
	h.start()
	testkit.Eventually(t, 10*time.Second, "both checks to run", func() bool {
		return h.status("api").Runs >= 1 && h.status("broken").Runs >= 1
	})
	srv := httptest.NewServer(h.r.StatusHandler())
	t.Cleanup(srv.Close)

	get := func(accept string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(body), "hunter2") {
			t.Errorf("/status leaks the password: %s", body)
		}
		return resp, string(body)
	}

	resp, body := get("")
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var doc struct {
		Checks []struct {
			Name                string  `json:"name"`
			Type                string  `json:"type"`
			Target              string  `json:"target"`
			State               string  `json:"state"`
			LastRun             *string `json:"last_run"`
			LastDurationSeconds float64 `json:"last_duration_seconds"`
			LastResult          string  `json:"last_result"`
			LastError           string  `json:"last_error"`
			LastErrorType       string  `json:"last_error_type"`
			ConsecutiveFailures int     `json:"consecutive_failures"`
			StatusCode          int     `json:"status_code"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	if len(doc.Checks) != 2 {
		t.Fatalf("got %d checks, want 2: %s", len(doc.Checks), body)
	}
	api, br := doc.Checks[0], doc.Checks[1]
	if api.Name != "api" || api.Type != "http" || api.State != "up" || api.Target != "http://probe:xxxxx@127.0.0.1:9/heartbeat/1" ||
		api.LastRun == nil || api.LastResult != "http://probe:xxxxx@127.0.0.1:9/heartbeat/1: 200 OK" || api.StatusCode != 200 {
		t.Errorf("api check: %+v", api)
	}
	if br.Name != "broken" || br.State != "down" || br.LastError != "status code 503, want 2xx" ||
		br.LastErrorType != probe.ErrStatusCode || br.ConsecutiveFailures < 1 || br.LastResult != "" {
		t.Errorf("broken check: %+v", br)
	}

	resp, body = get("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q for a browser, want text/html", ct)
	}
	for _, want := range []string{`<table id="checks">`, "api", `class="up"`, `class="down"`, "status code 503, want 2xx", "http://probe:xxxxx@127.0.0.1:9/heartbeat/1"} {
		if !strings.Contains(body, want) {
			t.Errorf("HTML page lacks %q:\n%s", want, body)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /status: %v %v, want 405", resp.StatusCode, err)
	} else {
		resp.Body.Close()
	}
}

func TestWantsHTML(t *testing.T) {
	cases := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"application/json"}, false},
		{[]string{"*/*"}, false},
		{[]string{"text/html"}, true},
		{[]string{"text/html;q=0.9, application/json"}, true},
		{[]string{"application/json", "text/html"}, true},
		{[]string{"text/html;q=0"}, false},
		{[]string{"garbage;;;"}, false},
	}
	for _, tc := range cases {
		if got := wantsHTML(tc.accept); got != tc.want {
			t.Errorf("wantsHTML(%q) = %v, want %v", tc.accept, got, tc.want)
		}
	}
}

// TestStatusJSONRoundTrip decodes /status into CheckStatus, as clients such
// as the end-to-end tests do, and requires nothing to be lost on the way.
func TestStatusJSONRoundTrip(t *testing.T) {
	h := newHarness(t, nil, func(_ context.Context, tg probe.Target) probe.Result {
		if tg.Address.IsValid() && tg.Address.Addr().Is4() {
			return probe.Result{Success: true, Message: "ok", StatusCode: 200, CertExpiry: time.Now().Add(time.Hour)}
		}
		return probe.Result{ErrorType: probe.ErrTimeout, Reason: "timed out after 1ms"}
	})
	h.r.resolver = startPeerDNS(t, "peers.heartbeat.test", "127.0.0.1").resolver()
	c := schedCheck("peers", 10*time.Millisecond)
	c.Type, c.Target, c.EachAddress = config.TypeHTTP, "http://peers.heartbeat.test:8080/", true
	h.apply(c, schedCheck("plain", 10*time.Millisecond))
	h.start()
	testkit.Eventually(t, 10*time.Second, "both checks to run", func() bool {
		st := h.r.Status()
		return len(st[0].Addresses) == 1 && st[0].Addresses[0].Runs >= 1 && st[1].Runs >= 1
	})
	h.stop()
	want, err := json.Marshal(h.r.Status())
	if err != nil {
		t.Fatal(err)
	}
	var got []CheckStatus
	if err := json.Unmarshal(want, &got); err != nil {
		t.Fatalf("decoding /status: %v\n%s", err, want)
	}
	again, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(want) {
		t.Errorf("round trip changed /status:\n got %s\nwant %s", again, want)
	}
	if a := got[0].Addresses[0]; a.Address.String() != "127.0.0.1:8080" || a.State != StateUp || a.LastDuration <= 0 {
		t.Errorf("decoded address entry %+v", a)
	}
}
