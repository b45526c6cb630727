package icmp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStatsAndLoss(t *testing.T) {
	ms := time.Millisecond
	r := EchoResult{Sent: 4, Received: 3, RTTs: []time.Duration{1 * ms, 2 * ms, 3 * ms}}
	st := r.Stats()
	// Population standard deviation of 1, 2, 3 ms is sqrt(2/3) ms.
	if st.Min != ms || st.Max != 3*ms || st.Avg != 2*ms || st.StdDev != 816496*time.Nanosecond {
		t.Errorf("stats %+v", st)
	}
	if r.Loss() != 0.25 {
		t.Errorf("loss %v, want 0.25", r.Loss())
	}
	if (EchoResult{}).Loss() != 0 || (EchoResult{}).Stats() != (Stats{}) {
		t.Errorf("an empty result has loss %v and stats %+v", (EchoResult{}).Loss(), (EchoResult{}).Stats())
	}
}

func TestPermissionErrorNamesTheFix(t *testing.T) {
	err := error(newPermissionError(syscall.EACCES, syscall.EPERM))
	if !errors.Is(err, ErrPermission) {
		t.Fatalf("%v is not ErrPermission", err)
	}
	for _, want := range []string{"net.ipv4.ping_group_range", "CAP_NET_RAW", "0 2147483647", "group " + strconv.Itoa(syscall.Getegid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

// TestEchoLoopback pings the loopback addresses of the test's own
// namespace: replies when this process may open an ICMP socket, otherwise
// the permission error with its fix.
func TestEchoLoopback(t *testing.T) {
	for _, dst := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		res, err := Echo(ctx, dst, EchoOptions{Count: 4, Interval: time.Millisecond, Size: 1000, DontFragment: true, TTL: 3})
		cancel()
		if errors.Is(err, ErrPermission) {
			if !strings.Contains(err.Error(), "ping_group_range") {
				t.Errorf("%s: %v does not name the fix", dst, err)
			}
			continue
		}
		if err != nil || res.Sent != 4 || res.Received != 4 || len(res.RTTs) != 4 || res.Duplicates != 0 {
			t.Errorf("%s: %+v, %v; want 4 replies", dst, res, err)
		}
	}
}

// TestPathMTULoopbackCapped: loopback carries 64 KiB, so every ladder size
// passes and the search stops at Max with no limit found.
func TestPathMTULoopbackCapped(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := PathMTU(ctx, netip.MustParseAddr("127.0.0.1"), MTUOptions{})
	if errors.Is(err, ErrPermission) {
		t.Skipf("no ICMP socket here: %v", err)
	}
	if err != nil || res.PathMTU != 9000 || res.Limit != "" || res.BlackHole || len(res.Tried) != len(DefaultLadder())+1 {
		t.Errorf("%+v, %v; want 9000 reached with every ladder size passing", res, err)
	}
}

func TestEchoRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, o := range []EchoOptions{{Count: MaxCount + 1}, {Size: 65508}} {
		if _, err := Echo(ctx, netip.MustParseAddr("127.0.0.1"), o); err == nil || errors.Is(err, ErrPermission) {
			t.Errorf("%+v: got %v, want an options error", o, err)
		}
	}
	if _, err := PathMTU(ctx, netip.MustParseAddr("127.0.0.1"), MTUOptions{Ladder: []int{1400, 70000}}); err == nil {
		t.Errorf("a ladder beyond 65535 was accepted")
	}
}

// payloadHandler serves /heartbeat/{n} like the payload server; bodies
// above stallAbove send their first bytes and then hang, as TCP does when
// full-sized segments vanish.
func payloadHandler(stallAbove int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/heartbeat/"))
		if err != nil || n < 1 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		body := strings.Repeat("0123456789ABCDEF", n/16+1)[:n]
		w.Header().Set("Content-Length", strconv.Itoa(n))
		if n <= stallAbove {
			_, _ = w.Write([]byte(body))
			return
		}
		_, _ = w.Write([]byte(body[:10]))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
}

func TestHTTPPathSearch(t *testing.T) {
	srv := httptest.NewServer(payloadHandler(1300))
	defer srv.Close()
	res, err := HTTPPathSearch(context.Background(), HTTPOptions{URL: srv.URL + "/", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Largest != 1300 || res.FirstFailed != 1350 || !res.Stalled || len(res.Tried) != 8 {
		t.Errorf("%+v; want 1300 passing, 1350 stalled", res)
	}
	if last := res.Tried[len(res.Tried)-1]; last.Received != 10 || last.Err == nil {
		t.Errorf("stalled size: %+v; want 10 bytes and an error", last)
	}

	all, err := HTTPPathSearch(context.Background(), HTTPOptions{URL: srv.URL, Sizes: []int{10, 100, 1000}})
	if err != nil || all.Largest != 1000 || all.FirstFailed != 0 || all.Stalled {
		t.Errorf("%+v, %v; want every size passing", all, err)
	}

	// A server that answers nothing whole says nothing about sizes.
	if _, err := HTTPPathSearch(context.Background(), HTTPOptions{URL: srv.URL, Sizes: []int{0}}); !errors.Is(err, ErrHTTPUnreachable) {
		t.Errorf("got %v, want ErrHTTPUnreachable", err)
	}
}

func TestIsPattern(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "0123": true, "0123456789ABCDEF0123456789ABCDEF01": true,
		"0123456789ABCDEX": false, "1": false, "0123456789ABCDEF1": false,
	} {
		if got := isPattern([]byte(s)); got != want {
			t.Errorf("isPattern(%q) = %v", s, got)
		}
	}
}
