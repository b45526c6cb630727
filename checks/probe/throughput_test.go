package probe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// servingAddr is in the line `heartbeat serve` logs once it accepts requests.
var servingAddr = regexp.MustCompile(`msg="heartbeat serving".* addr=(\S+)`)

// startPayloadServer runs the real payload server (`heartbeat serve`) on a
// loopback port with extra flags and returns its address.
func startPayloadServer(t *testing.T, flags ...string) string {
	t.Helper()
	bin := testkit.Heartbeat(t)
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--syslog-addr", "none", "--config", ""}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"OTEL_SDK_DISABLED=true"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingAddr.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
		close(found)
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatal("heartbeat serve exited before listening")
		}
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("heartbeat serve did not listen within 30 s")
	}
	return ""
}

func throughputCheck(target string, opts config.ThroughputOptions) *config.Check {
	return newCheck(config.Check{Name: "tput", Type: config.TypeThroughput, Target: target, Timeout: 20 * time.Second, Throughput: opts})
}

func TestServerTimingRecv(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
		ok     bool
	}{
		{"app;dur=1.500, recv;dur=160.250", 160250 * time.Microsecond, true},
		{`RECV;desc="body";dur=2`, 2 * time.Millisecond, true},
		{"app;dur=1.5", 0, false},
		{"recv", 0, false},
		{"recv;dur=-1", 0, false},
		{"recvx;dur=3, recv;dur=4", 4 * time.Millisecond, true},
		{`app;desc="a, recv;dur=9";dur=1`, 0, false},
	} {
		got, ok := serverTimingMetric(tc.header, serverTimingRecv)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: %v %v, want %v %v", tc.header, got, ok, tc.want, tc.ok)
		}
	}
}

// The run is split into requests no larger than the peer's --max-size,
// learnt from its 400, and every byte is counted once.
func TestThroughputByteCounts(t *testing.T) {
	addr := startPayloadServer(t, "--max-size", "1048576")
	const total = 3<<20 + 7
	c := throughputCheck("http://"+addr+"/", config.ThroughputOptions{Bytes: total})
	res := runProbe(t, nil, Target{Check: c})
	if !res.Success {
		t.Fatalf("failed: %s: %s", res.ErrorType, res.Reason)
	}
	if len(res.Transfers) != 2 {
		t.Fatalf("transfers %+v", res.Transfers)
	}
	for i, dir := range []string{DirectionReceive, DirectionTransmit} {
		tr := res.Transfers[i]
		if tr.Direction != dir || tr.Bytes != total || tr.Requests != 4 || tr.Duration <= 0 {
			t.Errorf("%s: %+v, want %d bytes in 4 requests", dir, tr, total)
		}
		t.Logf("loopback %s: %.0f Mbit/s (%d bytes in %v)", dir, tr.BitsPerSecond()/1e6, tr.Bytes, tr.Duration)
	}
	if !res.Transfers[1].ServerTimed {
		t.Error("upload not timed by the peer's recv Server-Timing")
	}
	if !res.Peer.IsValid() || res.Peer.String() != addr {
		t.Errorf("peer %v, want %s", res.Peer, addr)
	}
	names := map[string]bool{}
	for _, p := range res.Phases {
		names[p.Name] = true
	}
	if !names[PhaseConnect] || !names[PhaseTransfer] {
		t.Errorf("phases %+v", res.Phases)
	}
	if !strings.Contains(res.Message, "download ") || !strings.Contains(res.Message, "upload ") {
		t.Errorf("message %q", res.Message)
	}
	// Transfer time excludes connecting: the sum of the directions is below the run.
	if sum := res.Transfers[0].Duration + res.Transfers[1].Duration; sum >= res.Duration {
		t.Errorf("transfer time %v not below the run's %v", sum, res.Duration)
	}
}

func TestThroughputDirectionsAndFailures(t *testing.T) {
	addr := startPayloadServer(t)
	base := "http://" + addr
	t.Run("download only", func(t *testing.T) {
		res := runProbe(t, nil, Target{Check: throughputCheck(base, config.ThroughputOptions{Direction: config.DirectionDownload, Bytes: 1000})})
		if !res.Success || len(res.Transfers) != 1 || res.Transfers[0].Direction != DirectionReceive || res.Transfers[0].Bytes != 1000 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("upload only", func(t *testing.T) {
		res := runProbe(t, nil, Target{Check: throughputCheck(base, config.ThroughputOptions{Direction: config.DirectionUpload, Bytes: 5000})})
		if !res.Success || len(res.Transfers) != 1 || res.Transfers[0].Direction != DirectionTransmit || res.Transfers[0].Bytes != 5000 {
			t.Fatalf("%+v", res)
		}
	})
	t.Run("below min_bits_per_second", func(t *testing.T) {
		res := runProbe(t, nil, Target{Check: throughputCheck(base, config.ThroughputOptions{Bytes: 1000, MinBitsPerSecond: 1e15})})
		if res.Success || res.ErrorType != ErrThroughputLow || !strings.Contains(res.Reason, "below min_bits_per_second 1000000000.00 Mbit/s") {
			t.Fatalf("%s: %s", res.ErrorType, res.Reason)
		}
		if len(res.Transfers) != 2 {
			t.Fatalf("a slow run still reports its transfers: %+v", res.Transfers)
		}
	})
	t.Run("not a payload server", func(t *testing.T) {
		res := runProbe(t, nil, Target{Check: throughputCheck(base+"/elsewhere", config.ThroughputOptions{Bytes: 1000})})
		if res.Success || res.ErrorType != ErrStatusCode || !strings.Contains(res.Reason, "status code 404") {
			t.Fatalf("%s: %s", res.ErrorType, res.Reason)
		}
	})
	t.Run("refused", func(t *testing.T) {
		res := runProbe(t, nil, Target{Check: throughputCheck("http://"+testkit.ClosedAddr(t), config.ThroughputOptions{Bytes: 1000})})
		if res.Success || res.ErrorType != ErrConnectionRefused || len(res.Transfers) != 0 {
			t.Fatalf("%s: %s %+v", res.ErrorType, res.Reason, res.Transfers)
		}
	})
}

// A peer that stalls part way: the run times out with its own error.type
// and reports exactly what arrived.
func TestThroughputTimeoutReportsTransferred(t *testing.T) {
	const sent = 70000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	done := make(chan struct{})
	t.Cleanup(func() { close(release); ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		req, err := http.ReadRequest(bufio.NewReader(conn))
		if err != nil {
			return
		}
		fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n%s", strings.Repeat("x", sent))
		_ = req
		<-release
	}()
	c := throughputCheck("http://"+ln.Addr().String(), config.ThroughputOptions{Bytes: 1 << 20})
	c.Timeout = 300 * time.Millisecond
	res := runProbe(t, context.Background(), Target{Check: c})
	if res.Success || res.ErrorType != ErrTransferTimeout {
		t.Fatalf("%s: %s, want %s", res.ErrorType, res.Reason, ErrTransferTimeout)
	}
	if len(res.Transfers) != 1 || res.Transfers[0].Bytes != sent {
		t.Fatalf("transfers %+v, want %d bytes received", res.Transfers, sent)
	}
	if want := fmt.Sprintf("during download: %d of 1048576 bytes received", sent); !strings.Contains(res.Reason, want) {
		t.Fatalf("reason %q, want %q", res.Reason, want)
	}
}
