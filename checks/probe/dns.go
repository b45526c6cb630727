package probe

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// resolvConf is where the system resolver is read from when a dns check
// names no server.
const resolvConf = "/etc/resolv.conf"

// probeDNS asks the check's server for the target's records of the check's
// type; the response code must be a valid one and every expected answer
// must be among the records, as blackbox_exporter judges a dns probe.
func probeDNS(ctx context.Context, t Target) Result {
	c := t.Check
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(semconv.DNSQuestionNameKey.String(c.Target))
	}
	rtype := strings.ToUpper(c.DNS.RecordType)
	prefix := c.Target + ": " + rtype
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		server, answers, err := doDNS(ctx, t, rtype, res, rec)
		if server != "" {
			prefix += " via " + server
		}
		return prefix + ": " + answers, err
	}, func(reason string) string { return prefix + ": " + reason })
}

// doDNS returns the server asked and what it answered, for the message.
func doDNS(ctx context.Context, t Target, rtype string, res *Result, rec *recorder) (string, string, error) {
	c := t.Check
	if c.Target == "" {
		return "", "", failf(ErrOther, "empty name")
	}
	qtype, ok := dns.StringToType[rtype]
	if !ok {
		return "", "", failf(ErrOther, "unknown record type %q", rtype)
	}
	server, err := dnsServer(c.Server)
	if err != nil {
		return "", "", err
	}

	msg := new(dns.Msg)
	msg.SetQuestion(dns.Fqdn(c.Target), qtype)
	rec.start(PhaseDNS)
	network := "udp"
	if c.DNS.Transport == "tcp" {
		network = "tcp"
	}
	resp, err := exchange(ctx, network, server, msg, res)
	if err == nil && resp.Truncated && network == "udp" {
		resp, err = exchange(ctx, "tcp", server, msg, res)
	}
	if err != nil {
		return server, "", err
	}
	rec.end(PhaseDNS)
	rcode := dns.RcodeToString[resp.Rcode]
	if !slices.Contains(c.DNS.ValidRcodes, resp.Rcode) {
		return server, rcode, failf(ErrDNS, "server answered %s (valid: %s)", rcode, rcodeNames(c.DNS.ValidRcodes))
	}
	answers := make([]string, 0, len(resp.Answer))
	for _, rr := range resp.Answer {
		answers = append(answers, rdata(rr))
	}
	summary := strings.Join(answers, ", ")
	if len(answers) == 0 {
		if c.DNS.FailIfNoAnswer {
			return server, "", failf(ErrDNSAnswer, "%s with an empty answer section (fail_if_no_answer)", rcode)
		}
		summary = rcode + ", no records"
	} else if resp.Rcode != dns.RcodeSuccess {
		summary = rcode + ": " + summary
	}
	for _, want := range c.DNS.ExpectedAnswers {
		if !slices.ContainsFunc(resp.Answer, func(rr dns.RR) bool { return answerMatches(rr, want) }) {
			return server, summary, failf(ErrDNSAnswer, "answer lacks %q (got %s)", want, summary)
		}
	}
	return server, summary, nil
}

// rcodeNames lists response codes by name: "NOERROR, NXDOMAIN".
func rcodeNames(codes []int) string {
	names := make([]string, len(codes))
	for i, c := range codes {
		names[i] = dns.RcodeToString[c]
	}
	return strings.Join(names, ", ")
}

// rdata is a record's data in presentation form ("10 mail.example.com.").
func rdata(rr dns.RR) string {
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// answerMatches compares a record with an expected answer by its type:
// addresses as addresses (0:0:0:0:0:0:0:1 is ::1); MX and SRV by their host
// alone or their whole data; names without regard to case or a final dot;
// TXT by its strings joined, or as presented, without regard to case.
func answerMatches(rr dns.RR, want string) bool {
	want = strings.TrimSpace(want)
	switch r := rr.(type) {
	case *dns.A:
		return sameAddr(r.A, want)
	case *dns.AAAA:
		return sameAddr(r.AAAA, want)
	case *dns.MX:
		return sameName(r.Mx, want) || sameFields(want, strconv.Itoa(int(r.Preference)), r.Mx)
	case *dns.SRV:
		return sameName(r.Target, want) ||
			sameFields(want, strconv.Itoa(int(r.Priority)), strconv.Itoa(int(r.Weight)), strconv.Itoa(int(r.Port)), r.Target)
	case *dns.CNAME:
		return sameName(r.Target, want)
	case *dns.NS:
		return sameName(r.Ns, want)
	case *dns.TXT:
		return strings.EqualFold(strings.Join(r.Txt, ""), want) || sameName(strings.Trim(rdata(r), `"`), strings.Trim(want, `"`))
	}
	return sameName(rdata(rr), want)
}

func sameAddr(ip net.IP, want string) bool {
	got, ok := netip.AddrFromSlice(ip)
	w, err := netip.ParseAddr(want)
	return ok && err == nil && got.Unmap() == w.Unmap()
}

// sameName compares DNS names (or other record text) as resolvers do:
// case and a final dot do not matter.
func sameName(got, want string) bool {
	return strings.EqualFold(strings.TrimSuffix(got, "."), strings.TrimSuffix(want, "."))
}

// sameFields compares want, split at white space, with a record's fields,
// the last of which is a name.
func sameFields(want string, fields ...string) bool {
	w := strings.Fields(want)
	if len(w) != len(fields) {
		return false
	}
	last := len(w) - 1
	return slices.Equal(w[:last], fields[:last]) && sameName(fields[last], w[last])
}

// dnsServer is host:port of the resolver to ask: the configured one or,
// when none is, the first nameserver of resolv.conf.
func dnsServer(configured config.HostPort) (string, error) {
	if configured.Host != "" {
		return configured.String(), nil
	}
	cc, err := dns.ClientConfigFromFile(resolvConf)
	if err != nil {
		return "", failf(ErrOther, "no dns server configured and reading %s: %v", resolvConf, err)
	}
	if len(cc.Servers) == 0 {
		return "", failf(ErrOther, "no dns server configured and %s lists none", resolvConf)
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// exchange sends one query over a fresh connection and notes its peer in
// res; miekg/dns obeys only the context's deadline, so cancellation is wired
// to the connection here.
func exchange(ctx context.Context, network, server string, msg *dns.Msg, res *Result) (*dns.Msg, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if ap, err := netip.ParseAddrPort(conn.RemoteAddr().String()); err == nil {
		res.Peer = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	stop := withConnDeadline(ctx, conn)
	defer stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	client := &dns.Client{Net: network}
	// Without a Timeout miekg/dns caps each read and write at 2 s; the
	// context's deadline is the only limit a check should have.
	if deadline, ok := ctx.Deadline(); ok {
		client.Timeout = time.Until(deadline)
	}
	resp, _, err := client.ExchangeWithConnContext(ctx, msg, &dns.Conn{Conn: conn})
	return resp, err
}
