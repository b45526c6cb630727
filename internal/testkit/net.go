package testkit

import (
	"net"
	"sync"
	"testing"
)

// ClosedAddr returns a 127.0.0.1 address that was free a moment ago: a dial
// to it is refused, and a server the test starts later may bind it.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// BlackHole accepts TCP connections on 127.0.0.1 and never answers, like a
// hung peer or a firewall that drops replies; it closes them when the test
// ends. accepted reports how many connections it holds.
func BlackHole(t testing.TB) (addr string, accepted func() int) {
	t.Helper()
	ln := listen(t)
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// AcceptAndClose is a TCP address on 127.0.0.1 that accepts and hangs up at
// once; it stops when the test ends.
func AcceptAndClose(t testing.TB) string {
	t.Helper()
	ln := listen(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	return ln.Addr().String()
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
