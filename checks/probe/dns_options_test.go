package probe

import (
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// optionsZone answers the questions of TestDNSOptions: one record of each
// type whose comparison has rules of its own.
func optionsZone(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	q := r.Question[0]
	hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 60}
	switch {
	case q.Name == "zone.test." && q.Qtype == dns.TypeA:
		m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(10, 1, 2, 3)})
	case q.Name == "zone.test." && q.Qtype == dns.TypeAAAA:
		m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP("::1")},
			&dns.AAAA{Hdr: hdr, AAAA: net.ParseIP("2001:db8::10")})
	case q.Name == "zone.test." && q.Qtype == dns.TypeMX:
		m.Answer = append(m.Answer, &dns.MX{Hdr: hdr, Preference: 10, Mx: "mail.zone.test."})
	case q.Name == "_sip._tcp.zone.test." && q.Qtype == dns.TypeSRV:
		m.Answer = append(m.Answer, &dns.SRV{Hdr: hdr, Priority: 10, Weight: 60, Port: 5060, Target: "sip.zone.test."})
	case q.Name == "www.zone.test." && q.Qtype == dns.TypeCNAME:
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr, Target: "Web.Zone.Test."})
	case q.Name == "zone.test." && q.Qtype == dns.TypeNS:
		m.Answer = append(m.Answer, &dns.NS{Hdr: hdr, Ns: "ns1.zone.test."})
	case q.Name == "zone.test." && q.Qtype == dns.TypeTXT:
		m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{"v=spf1 ", "-all"}})
	case q.Name == "empty.zone.test.":
		// NOERROR with an empty answer section (NODATA).
	case q.Name == "zone.test.":
		// NODATA for the other types.
	case q.Name == "refused.zone.test.":
		m.Rcode = dns.RcodeRefused
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// parseCheck loads one check of type typ from YAML the way `heartbeat
// check` does, so each option is exercised through the file that sets it.
// A file that does not load is an error, and the check returned then has
// no target, so the row fails too.
func parseCheck(t *testing.T, typ, yaml string) config.Check {
	t.Helper()
	f, err := config.Parse("t.yaml", []byte(yaml))
	if err != nil || len(f.Checks) != 1 {
		t.Errorf("config: %v\n%s", err, yaml)
		return config.Check{Type: typ}
	}
	return f.Checks[0]
}

func TestDNSOptions(t *testing.T) {
	testkit.CheckLeaks(t)
	both := serveDNS(t, dns.HandlerFunc(optionsZone), true)
	tcpOnly := serveDNS(t, dns.HandlerFunc(optionsZone), false)

	type row = struct {
		name     string
		target   string
		dns      string // the YAML flow mapping's contents, server excluded
		server   string // default: both
		wantType string
		wantMsg  string // substring of the message
	}
	tests := []row{
		// Rcodes and empty answers, as blackbox_exporter judges them.
		{name: "NODATA passes by default", target: "empty.zone.test"},
		{name: "NODATA fails when asked to", target: "empty.zone.test", dns: "fail_if_no_answer: true", wantType: ErrDNSAnswer, wantMsg: "empty answer section"},
		{name: "answers present with fail_if_no_answer", target: "zone.test", dns: "fail_if_no_answer: true"},
		{name: "NXDOMAIN fails by default", target: "nope.zone.test", wantType: ErrDNS, wantMsg: "NXDOMAIN"},
		{name: "NXDOMAIN expected", target: "nope.zone.test", dns: "valid_rcodes: [NXDOMAIN]"},
		{name: "NXDOMAIN among several", target: "nope.zone.test", dns: "valid_rcodes: [noerror, nxdomain]"},
		{name: "NOERROR not in valid_rcodes", target: "zone.test", dns: "valid_rcodes: [NXDOMAIN]", wantType: ErrDNS, wantMsg: "NOERROR"},
		{name: "REFUSED", target: "refused.zone.test", dns: "valid_rcodes: [NOERROR, NXDOMAIN]", wantType: ErrDNS, wantMsg: "REFUSED"},

		// expected_answers: addresses as addresses, names without case or final dot.
		{name: "A", target: "zone.test", dns: "expected_answers: [10.1.2.3]"},
		{name: "AAAA in long form", target: "zone.test", dns: "record_type: AAAA, expected_answers: [\"0:0:0:0:0:0:0:1\", \"2001:DB8:0::10\"]"},
		{name: "AAAA missing", target: "zone.test", dns: "record_type: AAAA, expected_answers: [\"::2\"]", wantType: ErrDNSAnswer},
		{name: "MX host alone", target: "zone.test", dns: "record_type: MX, expected_answers: [MAIL.zone.test.]"},
		{name: "MX full data", target: "zone.test", dns: "record_type: MX, expected_answers: [\"10 mail.zone.test\"]"},
		{name: "MX wrong preference", target: "zone.test", dns: "record_type: MX, expected_answers: [\"20 mail.zone.test\"]", wantType: ErrDNSAnswer},
		{name: "SRV target alone", target: "_sip._tcp.zone.test", dns: "record_type: SRV, expected_answers: [sip.zone.test]"},
		{name: "SRV full data", target: "_sip._tcp.zone.test", dns: "record_type: SRV, expected_answers: [\"10 60 5060 SIP.zone.test.\"]"},
		{name: "SRV wrong port", target: "_sip._tcp.zone.test", dns: "record_type: SRV, expected_answers: [\"10 60 5061 sip.zone.test\"]", wantType: ErrDNSAnswer},
		{name: "CNAME case and dot", target: "www.zone.test", dns: "record_type: CNAME, expected_answers: [web.zone.test]"},
		{name: "NS", target: "zone.test", dns: "record_type: NS, expected_answers: [ns1.zone.test.]"},
		{name: "TXT strings joined", target: "zone.test", dns: "record_type: TXT, expected_answers: [\"v=spf1 -all\"]"},

		// DNS over TCP.
		{name: "transport tcp", target: "zone.test", dns: "transport: tcp, expected_answers: [10.1.2.3]", server: tcpOnly},
		{name: "transport udp to a TCP-only server", target: "zone.test", dns: "transport: udp", server: tcpOnly, wantType: ErrConnectionRefused},
	}
	runTable(t, tests, func(tc row) tableCase {
		server := tc.server
		if server == "" {
			server = both
		}
		c := parseCheck(t, config.TypeDNS, fmt.Sprintf("checks:\n  - {name: x, type: dns, target: %q, timeout: 3s, dns: {server: %q, %s}}\n", tc.target, server, tc.dns))
		return tableCase{name: tc.name, wantType: tc.wantType, check: c}
	}, func(t *testing.T, tc row, check *config.Check, res Result) {
		if tc.wantMsg != "" && !strings.Contains(res.Message, tc.wantMsg) {
			t.Errorf("message %q lacks %q", res.Message, tc.wantMsg)
		}
		if res.Success && !strings.Contains(res.Message, tc.target) {
			t.Errorf("message %q does not name %s", res.Message, tc.target)
		}
	})
}
