package netlab

import (
	"context"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPathForwardsAndTearsDown builds the three-namespace path, sends TCP
// across the router both ways round, and checks that Close removes every
// namespace it made.
func TestPathForwardsAndTearsDown(t *testing.T) {
	p := NewPath(t, PathConfig{FirstMTU: 1500, SecondMTU: 1400})
	names := []string{p.Prober.Name, p.Router.Name, p.Target.Name}
	for _, n := range names {
		if !slices.Contains(Namespaces(), n) {
			t.Fatalf("namespace %s missing; have %v", n, Namespaces())
		}
	}
	if got := p.Target.IP("-o", "link", "show", "eth0"); !strings.Contains(got, "mtu 1400") {
		t.Errorf("target eth0: %s, want mtu 1400", got)
	}
	for _, addr := range []netip.Addr{p.TargetV4, p.TargetV6} {
		var ln net.Listener
		if err := p.Target.Do(func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		accepted := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				_, err = c.Write([]byte("ok"))
				c.Close()
			}
			accepted <- err
		}()
		var c net.Conn
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.Prober.Do(func() (err error) {
			c, err = (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
			return err
		})
		cancel()
		if err != nil {
			t.Fatalf("dial %s from the prober: %v", ln.Addr(), err)
		}
		buf := make([]byte, 2)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "ok" {
			t.Errorf("read %q, %v", buf, err)
		}
		c.Close()
		ln.Close()
		if err := <-accepted; err != nil {
			t.Errorf("accept: %v", err)
		}
	}
	// The addresses exist only inside the lab, not in the test's namespace.
	local, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range local {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil && (pfx.Addr() == p.TargetV4 || pfx.Addr() == p.TargetV6) {
			t.Errorf("lab address %s configured outside the lab", pfx)
		}
	}
	p.Close()
	p.Close() // idempotent
	for _, n := range names {
		if _, err := os.Stat(netnsDir + "/" + n); !os.IsNotExist(err) {
			t.Errorf("namespace %s still exists after Close (%v)", n, err)
		}
	}
}

// TestSweepRemovesAbandonedLabs checks that a namespace named for a process
// that no longer exists is deleted when the next lab is built.
func TestSweepRemovesAbandonedLabs(t *testing.T) {
	l := New(t)
	// Pid 2^22+1 is above the kernel's pid_max limit, so no process has it.
	stale := namePrefix + "4194305-deadbeef-x"
	l.ip("netns", "add", stale)
	t.Cleanup(func() { _ = deleteNamespace(stale) })
	New(t)
	if _, err := os.Stat(netnsDir + "/" + stale); !os.IsNotExist(err) {
		t.Errorf("abandoned namespace %s not swept (%v)", stale, err)
	}
}

// TestCloseKillsProcesses: a process started in a namespace (here one that
// would sleep for an hour) is killed and reaped by Close, so it cannot keep
// the namespace alive.
func TestCloseKillsProcesses(t *testing.T) {
	l := New(t)
	ns := l.Namespace("proc")
	cmd := ns.Command(context.Background(), nil, "sleep", "3600")
	l.Start(cmd)
	l.Close()
	if cmd.ProcessState == nil {
		t.Fatal("process still running after Close")
	}
	if _, err := os.Stat(netnsDir + "/" + ns.Name); !os.IsNotExist(err) {
		t.Errorf("namespace %s left behind (%v)", ns.Name, err)
	}
}
