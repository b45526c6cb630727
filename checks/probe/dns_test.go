package probe

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// testZone answers the dns cases' questions.
func testZone(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
	switch {
	case q.Name == "example.test." && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer,
			&dns.A{Hdr: hdr, A: net.IPv4(1, 2, 3, 4)},
			&dns.A{Hdr: hdr, A: net.IPv4(5, 6, 7, 8)})
	case q.Name == "example.test." && q.Qtype == dns.TypeMX:
		m.Answer = append(m.Answer, &dns.MX{Hdr: hdr, Preference: 10, Mx: "mail.example.test."})
	case q.Name == "example.test." && q.Qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{"v=spf1 -all"}})
	case q.Name == "example.test.":
		// NOERROR, no data.
	case q.Name == "big.test." && q.Qtype == dns.TypeA:
		for i := 1; i <= 60; i++ {
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(10, 0, 0, byte(i))})
		}
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncate(dns.MinMsgSize) // sets TC: the client must retry over TCP
		}
	case q.Name == "fail.test.":
		m.Rcode = dns.RcodeServerFailure
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// dnsTestServer serves testZone over UDP and TCP on the same free port.
func dnsTestServer(t *testing.T) string {
	t.Helper()
	return serveDNS(t, dns.HandlerFunc(testZone), true)
}

// serveDNS serves handler over TCP and, when udp is set, over UDP on the
// same free port, until the test ends.
func serveDNS(t *testing.T, handler dns.Handler, udp bool) string {
	t.Helper()
	var (
		pc  net.PacketConn
		ln  net.Listener
		err error
	)
	for range 20 {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if !udp {
			break
		}
		if pc, err = net.ListenPacket("udp", ln.Addr().String()); err == nil {
			break
		}
		ln.Close()
	}
	if err != nil {
		t.Fatalf("no port free for both UDP and TCP: %v", err)
	}
	servers := []*dns.Server{{Listener: ln, Handler: handler}}
	if udp {
		servers = append(servers, &dns.Server{PacketConn: pc, Handler: handler})
	}
	errs := make(chan error, len(servers))
	for _, srv := range servers {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go func() { errs <- srv.ActivateAndServe() }()
		<-started // Shutdown before the start would leave the server running
	}
	t.Cleanup(func() {
		for _, srv := range servers {
			if err := srv.Shutdown(); err != nil {
				t.Errorf("dns server shutdown: %v", err)
			}
		}
		for range servers {
			if err := <-errs; err != nil {
				t.Errorf("dns server: %v", err)
			}
		}
	})
	return ln.Addr().String()
}

// silentUDP is a UDP socket that reads queries and never answers.
func silentUDP(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc.LocalAddr().String()
}

func closedUDPPort(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestDNSProbe(t *testing.T) {
	testkit.CheckLeaks(t)
	server := dnsTestServer(t)
	silent := silentUDP(t)
	closed := closedUDPPort(t)
	_, port, _ := net.SplitHostPort(server)

	type row = struct {
		name     string
		target   string
		dns      config.DNSOptions
		timeout  time.Duration
		wantType string
		wantMsg  string
	}
	tests := []row{
		{name: "A records", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "A", ExpectedAnswers: []string{"5.6.7.8", "1.2.3.4"}},
			wantMsg: "example.test: A via " + server + ": 1.2.3.4, 5.6.7.8"},
		{name: "default type A, fqdn target", target: "example.test.", dns: config.DNSOptions{Server: server}},
		{name: "lower-case type", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "a", ExpectedAnswers: []string{"1.2.3.4"}}},
		{name: "expected answer missing", target: "example.test", dns: config.DNSOptions{Server: server, ExpectedAnswers: []string{"1.2.3.4", "9.9.9.9"}}, wantType: ErrDNSAnswer},
		{name: "MX", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "MX", ExpectedAnswers: []string{"10 mail.example.test"}}},
		{name: "TXT", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "TXT", ExpectedAnswers: []string{"v=spf1 -all"}}},
		{name: "no data", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "AAAA"},
			wantMsg: "example.test: AAAA via " + server + ": NOERROR, no records"},
		{name: "no data, fail_if_no_answer", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "AAAA", FailIfNoAnswer: true}, wantType: ErrDNSAnswer},
		{name: "NXDOMAIN", target: "missing.test", dns: config.DNSOptions{Server: server}, wantType: ErrDNS},
		{name: "SERVFAIL", target: "fail.test", dns: config.DNSOptions{Server: server}, wantType: ErrDNS},
		{name: "truncated, retried over TCP", target: "big.test", dns: config.DNSOptions{Server: server, ExpectedAnswers: []string{"10.0.0.60"}}},
		{name: "server answers nothing", target: "example.test", dns: config.DNSOptions{Server: silent}, timeout: 200 * time.Millisecond, wantType: ErrTimeout},
		{name: "server port closed", target: "example.test", dns: config.DNSOptions{Server: closed}, wantType: ErrConnectionRefused},
		{name: "unknown record type", target: "example.test", dns: config.DNSOptions{Server: server, RecordType: "BOGUS"}, wantType: ErrOther},
		{name: "empty name", target: "", dns: config.DNSOptions{Server: server}, wantType: ErrOther},
	}
	runTable(t, tests, func(tc row) tableCase {
		return tableCase{name: tc.name, wantType: tc.wantType,
			check: config.Check{Type: config.TypeDNS, Target: tc.target, Timeout: tc.timeout, DNS: tc.dns}}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		if tc.wantMsg != "" && res.Message != tc.wantMsg {
			t.Errorf("message %q, want %q", res.Message, tc.wantMsg)
		}
		if res.Success {
			if len(res.Phases) != 1 || res.Phases[0].Name != PhaseDNS {
				t.Errorf("phases %v, want [dns]", phaseNames(res))
			}
			if !peerIs(res, port) {
				t.Errorf("server %s, want %s", res.Peer, server)
			}
		}
		if !strings.HasPrefix(res.Message, tc.target+": ") {
			t.Errorf("message %q does not start with the name", res.Message)
		}
	})
}

func TestDNSServer(t *testing.T) {
	for _, tc := range []struct {
		in   config.HostPort
		want string
	}{
		{config.HostPort{Host: "127.0.0.1", Port: 5353}, "127.0.0.1:5353"},
		{config.HostPort{Host: "::1", Port: 53}, "[::1]:53"},
		{config.HostPort{Host: "ns.example", Port: 53}, "ns.example:53"},
	} {
		if got, err := dnsServer(tc.in); err != nil || got != tc.want {
			t.Errorf("dnsServer(%v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil || len(cc.Servers) == 0 {
		t.Skipf("no usable %s: %v", resolvConf, err)
	}
	if got, err := dnsServer(config.HostPort{}); err != nil || got != net.JoinHostPort(cc.Servers[0], cc.Port) {
		t.Errorf("dnsServer(zero) = %q, %v; want the first nameserver of %s", got, err, resolvConf)
	}
}
