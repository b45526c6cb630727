package probe

import (
	"context"
	"net"
	"net/netip"
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
// type and requires every expected answer to be among them.
func probeDNS(ctx context.Context, t Target) Result {
	c := t.Check
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(semconv.DNSQuestionNameKey.String(c.Target))
	}
	rtype := strings.ToUpper(c.DNS.RecordType)
	prefix := c.Target + " " + rtype
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		server, answers, err := doDNS(ctx, t, rtype, res, rec)
		if server != "" {
			prefix += " via " + server
		}
		return prefix + ": " + strings.Join(answers, ", "), err
	}, func(reason string) string { return prefix + ": " + reason })
}

// doDNS returns the server asked and the answers' data.
func doDNS(ctx context.Context, t Target, rtype string, res *Result, rec *recorder) (string, []string, error) {
	c := t.Check
	if c.Target == "" {
		return "", nil, failf(ErrOther, "empty name")
	}
	qtype, ok := dns.StringToType[rtype]
	if !ok {
		return "", nil, failf(ErrOther, "unknown record type %q", rtype)
	}
	server, err := dnsServer(c.Server)
	if err != nil {
		return "", nil, err
	}

	msg := new(dns.Msg)
	msg.SetQuestion(dns.Fqdn(c.Target), qtype)
	rec.start(PhaseDNS)
	resp, err := exchange(ctx, "udp", server, msg, res)
	if err == nil && resp.Truncated {
		resp, err = exchange(ctx, "tcp", server, msg, res)
	}
	if err != nil {
		return server, nil, err
	}
	rec.end(PhaseDNS)
	if resp.Rcode != dns.RcodeSuccess {
		return server, nil, failf(ErrDNS, "server answered %s", dns.RcodeToString[resp.Rcode])
	}
	answers := make([]string, 0, len(resp.Answer))
	for _, rr := range resp.Answer {
		answers = append(answers, strings.TrimPrefix(rr.String(), rr.Header().String()))
	}
	if len(answers) == 0 {
		return server, nil, failf(ErrDNSAnswer, "no answer")
	}
	for _, want := range c.DNS.ExpectedAnswers {
		if !containsAnswer(answers, want) {
			return server, answers, failf(ErrDNSAnswer, "answer lacks %q (got %s)", want, strings.Join(answers, ", "))
		}
	}
	return server, answers, nil
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

// containsAnswer compares record data loosely: case, a trailing dot and TXT
// quotes do not matter ("mail.example.com" matches "mail.example.com.").
func containsAnswer(answers []string, want string) bool {
	norm := func(s string) string { return strings.TrimSuffix(strings.Trim(strings.TrimSpace(s), `"`), ".") }
	for _, a := range answers {
		if strings.EqualFold(norm(a), norm(want)) {
			return true
		}
	}
	return false
}
