package probe

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// dualStack listens on 127.0.0.1 and [::1] on one port and serves every
// connection by writing the address it came from and closing (so tcp,
// http and grpc probes all connect, and tests can see the source).
func dualStack(t *testing.T) (port string) {
	t.Helper()
	for range 20 {
		v4, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		_, port, _ = net.SplitHostPort(v4.Addr().String())
		v6, err := net.Listen("tcp6", "[::1]:"+port)
		if err != nil {
			v4.Close() // the port is taken on ::1: try another
			continue
		}
		for _, ln := range []net.Listener{v4, v6} {
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.RemoteAddr)
			})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
		}
		return port
	}
	t.Fatal("no port free on both 127.0.0.1 and ::1")
	return ""
}

// TestIPProtocol covers ip_protocol and ip_protocol_fallback for the
// probers that dial, against listeners on both loopback families.
func TestIPProtocol(t *testing.T) {
	testkit.CheckLeaks(t)
	port := dualStack(t)
	v4 := "127.0.0.1:" + port
	v6 := "[::1]:" + port
	name := "localhost:" + port // /etc/hosts: 127.0.0.1 only, here
	type row = struct {
		name, target string
		dial         config.DialOptions
		want         string // the peer dialled; "" when the run fails
		wantType     string
	}
	ip4, ip6 := config.DialOptions{IPProtocol: "ip4"}, config.DialOptions{IPProtocol: "ip6"}
	strict4 := config.DialOptions{IPProtocol: "ip4", NoIPProtocolFallback: true}
	strict6 := config.DialOptions{IPProtocol: "ip6", NoIPProtocolFallback: true}
	rows := []row{
		{name: "v4 literal, ip4", target: v4, dial: ip4, want: v4},
		{name: "v6 literal, ip6", target: v6, dial: ip6, want: v6},
		{name: "v6 literal, ip4 falls back", target: v6, dial: ip4, want: v6},
		{name: "v4 literal, ip6 falls back", target: v4, dial: ip6, want: v4},
		{name: "v6 literal, ip4 only", target: v6, dial: strict4, wantType: ErrDNS},
		{name: "v4 literal, ip6 only", target: v4, dial: strict6, wantType: ErrDNS},
		{name: "v4-only name, ip6 falls back", target: name, dial: ip6, want: v4},
		{name: "v4-only name, ip6 only", target: name, dial: strict6, wantType: ErrDNS},
		{name: "v4-only name, ip4", target: name, dial: strict4, want: v4},
	}
	for _, typ := range []string{config.TypeTCP, config.TypeHTTP} {
		runTable(t, rows, func(r row) tableCase {
			target := r.target
			if typ == config.TypeHTTP {
				target = "http://" + target + "/"
			}
			return tableCase{name: typ + " " + r.name, wantType: r.wantType,
				check: config.Check{Type: typ, Target: target, Dial: r.dial}}
		}, func(t *testing.T, r row, _ *config.Check, res Result) {
			if r.want != "" && res.Peer.String() != r.want {
				t.Errorf("dialled %v, want %s", res.Peer, r.want)
			}
		})
	}
}

// TestSourceAddress requires connections of every dialling type to come
// from source_address: the server sees it as the peer.
func TestSourceAddress(t *testing.T) {
	testkit.CheckLeaks(t)
	seen := make(chan netip.AddrPort, 10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}), ConnState: func(c net.Conn, s http.ConnState) {
		if s == http.StateNew {
			seen <- netip.MustParseAddrPort(c.RemoteAddr().String())
		}
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()
	for i, c := range []config.Check{
		{Type: config.TypeTCP, Target: addr},
		{Type: config.TypeHTTP, Target: "http://" + addr + "/"},
		{Type: config.TypeGRPC, Target: addr}, // fails: not a gRPC server, but it connects
	} {
		src := netip.MustParseAddr(fmt.Sprintf("127.0.0.%d", 2+i))
		c.Dial = config.DialOptions{SourceAddress: src}
		c.Timeout = defaultCaseTimeout
		check := newCheck(c)
		runProbe(t, nil, Target{Check: check})
		select {
		case from := <-seen:
			if from.Addr() != src {
				t.Errorf("%s check connected from %v, want %v", c.Type, from, src)
			}
		case <-time.After(5 * time.Second):
			// The server notes a connection on its own goroutine, maybe
			// after the run is over.
			t.Errorf("%s check: the server saw no connection", c.Type)
		}
	}
	// A source address of the other family cannot reach the target.
	check := newCheck(config.Check{Type: config.TypeTCP, Target: addr, Timeout: defaultCaseTimeout,
		Dial: config.DialOptions{SourceAddress: netip.MustParseAddr("::1")}})
	res := runProbe(t, nil, Target{Check: check})
	assertResult(t, res, ErrDNS, check.Timeout)
}
