package probe

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// resolvConf is where the system resolver is read from when a dns check
// names no server.
const resolvConf = "/etc/resolv.conf"

// probeDNS asks the check's server for the target's records of the check's
// type and requires every expected answer to be among them.
func probeDNS(ctx context.Context, t Target) Result {
	res := Result{Start: time.Now()}
	rec := newPhaseRecorder()
	c := t.Check
	rtype := c.DNS.RecordType
	if rtype == "" {
		rtype = "A"
	}
	server, answers, err := doDNS(ctx, t, strings.ToUpper(rtype), &res, rec)
	finish(ctx, &res, rec, err)
	prefix := fmt.Sprintf("%s %s", c.Target, strings.ToUpper(rtype))
	if server != "" {
		prefix += " via " + server
	}
	if res.Success {
		res.Message = fmt.Sprintf("%s: %s", prefix, strings.Join(answers, ", "))
	} else {
		res.Message = fmt.Sprintf("%s: %s", prefix, res.Reason)
	}
	return res
}

// doDNS returns the server asked and the answers' data.
func doDNS(ctx context.Context, t Target, rtype string, res *Result, rec *phaseRecorder) (string, []string, error) {
	c := t.Check
	if c.Target == "" {
		return "", nil, failf(ErrOther, "empty name")
	}
	qtype, ok := dns.StringToType[rtype]
	if !ok {
		return "", nil, failf(ErrOther, "unknown record type %q", rtype)
	}
	server, err := dnsServer(c.DNS.Server)
	if err != nil {
		return "", nil, err
	}
	res.ServerAddress, res.ServerPort = splitAddr(server)

	msg := new(dns.Msg)
	msg.SetQuestion(dns.Fqdn(c.Target), qtype)
	rec.start(PhaseDNS)
	resp, err := exchange(ctx, "udp", server, msg)
	if err == nil && resp.Truncated {
		resp, err = exchange(ctx, "tcp", server, msg)
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

// dnsServer is host:port of the resolver to ask: the configured one (port 53
// when none is given) or the first nameserver of resolv.conf.
func dnsServer(configured string) (string, error) {
	if configured != "" {
		if _, _, err := net.SplitHostPort(configured); err != nil {
			return net.JoinHostPort(configured, "53"), nil
		}
		return configured, nil
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

// exchange sends one query over a fresh connection; miekg/dns obeys only the
// context's deadline, so cancellation is wired to the connection here.
func exchange(ctx context.Context, network, server string, msg *dns.Msg) (*dns.Msg, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
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
