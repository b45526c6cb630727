package testkit

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestClosedAddrRefuses(t *testing.T) {
	_, err := net.DialTimeout("tcp", ClosedAddr(t), time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial: %v, want connection refused", err)
	}
}

func TestBlackHoleHoldsConnections(t *testing.T) {
	addr, accepted := BlackHole(t)
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	Eventually(t, 5*time.Second, "two accepted connections", func() bool { return accepted() == 2 })
}

func TestAcceptAndCloseHangsUp(t *testing.T) {
	c, err := net.Dial("tcp", AcceptAndClose(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, syscall.ETIMEDOUT) {
		t.Fatalf("read: %d, %v; want the peer to hang up", n, err)
	}
}

func TestJSONLines(t *testing.T) {
	log, buf := JSONLogger()
	log.Debug("one", "k", 1)
	log.Info("two")
	lines := buf.JSONLines(t)
	if len(lines) != 2 || lines[0]["msg"] != "one" || lines[0]["k"] != float64(1) || lines[1]["msg"] != "two" {
		t.Fatalf("lines = %v", lines)
	}
}

func TestResourcesWithin(t *testing.T) {
	base := Resources{Goroutines: 5, FDs: 10}
	for _, tc := range []struct {
		now  Resources
		want bool
	}{
		{Resources{5, 10}, true},
		{Resources{4, 9}, true},
		{Resources{6, 10}, false},
		{Resources{5, 11}, false},
	} {
		if got := tc.now.within(base); got != tc.want {
			t.Errorf("%v within %v = %v, want %v", tc.now, base, got, tc.want)
		}
	}
}

func TestGoroutinesIn(t *testing.T) {
	release := make(chan struct{})
	done := make(chan struct{})
	go func() { parkedInTest(release); close(done) }()
	Eventually(t, 5*time.Second, "the parked goroutine", func() bool { return GoroutinesIn("testkit.parkedInTest") == 1 })
	close(release)
	<-done
}

func parkedInTest(release <-chan struct{}) { <-release }
