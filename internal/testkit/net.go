package testkit

import (
	"net"
	"sync"
	"testing"
)

// ClosedAddr returns a free 127.0.0.1 address: dials are refused, and a later server may bind it.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// BlackHole accepts TCP connections on 127.0.0.1 and never answers; accepted counts them.
func BlackHole(t testing.TB) (addr string, accepted func() int) {
	t.Helper()
	var (
		mu     sync.Mutex
		conns  []net.Conn
		closed bool
	)
	addr = acceptLoop(t, func(c net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return
		}
		conns = append(conns, c)
	})
	// Runs before acceptLoop's cleanup (registered earlier), so a connection
	// accepted in between is closed by the loop itself.
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
	})
	return addr, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// AcceptAndClose is a TCP address on 127.0.0.1 that accepts and hangs up at once.
func AcceptAndClose(t testing.TB) string {
	t.Helper()
	return acceptLoop(t, func(c net.Conn) { c.Close() })
}

// acceptLoop listens on 127.0.0.1 and hands every connection to handle until
// the test ends, when it closes the listener and waits for the loop.
func acceptLoop(t testing.TB, handle func(net.Conn)) string {
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
			handle(c)
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
