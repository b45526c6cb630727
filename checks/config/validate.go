package config

import (
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpguts"
)

// Defaults applied when neither the check nor the file's defaults block sets a value.
const (
	DefaultInterval         = 30 * time.Second // interval
	DefaultTimeout          = 5 * time.Second  // timeout (at most half a shorter interval)
	DefaultJitter           = 0.1              // jitter: ±10 % of the interval
	DefaultFailureThreshold = 1                // failure_threshold, as in GoHeartbeat
	DefaultSuccessThreshold = 1                // success_threshold
	DefaultMaxAddresses     = 100              // max_addresses with each_address
	DefaultMaxRedirects     = 10               // http.max_redirects, as net/http
	DefaultMethod           = http.MethodGet   // http.method
	DefaultRecordType       = "A"              // dns.record_type
	DefaultDNSTransport     = "udp"            // dns.transport
	DefaultDNSRcode         = 0                // dns.valid_rcodes: NOERROR
)

// Limits enforced by validation.
const (
	MinInterval     = time.Second // shortest interval
	MaxJitter       = 0.5         // largest jitter fraction
	MaxMaxAddresses = 1000        // largest max_addresses
	MaxMaxRedirects = 100         // largest http.max_redirects
	MaxMinDaysLeft  = 3650        // largest tls.min_days_left
	maxNameLen      = 1024
	maxTargetLen    = 4096
)

var (
	methods     = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
	recordTypes = []string{"A", "AAAA", "CNAME", "MX", "TXT", "NS", "SRV"}
	transports  = []string{"udp", "tcp"}
	// rcodes names the response codes a DNS header can carry, by value.
	rcodes = []string{"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE"}
)

// inheritedTimeout is the timeout a check gets when it sets none: the
// inherited value, or half the interval when that would not be shorter than
// the interval (as Prometheus caps an inherited scrape_timeout), so a short
// interval never needs a timeout written next to it.
func inheritedTimeout(inherited, interval time.Duration) time.Duration {
	// An interval too short to use is reported by itself; deriving a
	// timeout from it would add an error about a key nobody wrote.
	if interval >= MinInterval && inherited >= interval {
		return interval / 2
	}
	return inherited
}

// ApplyDefaults fills c's zero fields with defaults and derives Server and URL; call it on every Check built in code.
func (c *Check) ApplyDefaults() {
	// Both loaders call it too. Jitter is left alone (0 is valid), and so is
	// everything a file would have to spell out (name, type, target). A
	// target that does not fit its type leaves the derived values zero:
	// Validate reports it.
	c.applyDefaults(nil)
}

// applyDefaults is ApplyDefaults for a loader: given reports whether the
// file set a field (named relative to the check, "http.max_redirects");
// such a field keeps its value even when zero, so that validation reports
// an explicit 0 instead of replacing it. A nil given means nothing was set.
func (c *Check) applyDefaults(given func(field string) bool) {
	unset := func(field string, zero bool) bool {
		return zero && (given == nil || !given(field))
	}
	if unset("interval", c.Interval == 0) {
		c.Interval = DefaultInterval
	}
	if unset("timeout", c.Timeout == 0) {
		c.Timeout = inheritedTimeout(DefaultTimeout, c.Interval)
	}
	if unset("failure_threshold", c.FailureThreshold == 0) {
		c.FailureThreshold = DefaultFailureThreshold
	}
	if unset("success_threshold", c.SuccessThreshold == 0) {
		c.SuccessThreshold = DefaultSuccessThreshold
	}
	if c.EachAddress && unset("max_addresses", c.MaxAddresses == 0) {
		c.MaxAddresses = DefaultMaxAddresses
	}
	switch c.Type {
	case TypeHTTP:
		if unset("http.method", c.HTTP.Method == "") {
			c.HTTP.Method = DefaultMethod
		}
		if !c.HTTP.NoFollowRedirects && unset("http.max_redirects", c.HTTP.MaxRedirects == 0) {
			c.HTTP.MaxRedirects = DefaultMaxRedirects
		}
		if len(c.HTTP.BodyMatches)+len(c.HTTP.BodyNotMatches) > 0 && unset("http.max_body_bytes", c.HTTP.MaxBodyBytes == 0) {
			c.HTTP.MaxBodyBytes = DefaultMaxBodyBytes
		}
	case TypeThroughput:
		c.Throughput.applyDefaults(unset)
	case TypeDNS:
		if unset("dns.record_type", c.DNS.RecordType == "") {
			c.DNS.RecordType = DefaultRecordType
		}
		if unset("dns.transport", c.DNS.Transport == "") {
			c.DNS.Transport = DefaultDNSTransport
		}
		if unset("dns.valid_rcodes", len(c.DNS.ValidRcodes) == 0) {
			c.DNS.ValidRcodes = []int{DefaultDNSRcode}
		}
		c.DNS.Server = withDNSPort(c.DNS.Server)
	case TypeICMP:
		c.ICMP.applyDefaults(unset)
	case TypeMTU:
		c.MTU.applyDefaults(unset)
	}
	c.derive()
}

// Validate reports every problem in the file's checks and repeated names, joined; nil when usable.
func (f *File) Validate() error {
	l := newErrList(f.Path)
	seen := make(map[string]int, len(f.Checks))
	for i := range f.Checks {
		c := &f.Checks[i]
		p := indexPath("checks", i)
		for _, pr := range c.problems() {
			l.add(0, subPath(p, pr.field), pr.kind, "%s", pr.msg)
		}
		if c.Name == "" {
			continue
		}
		if j, dup := seen[c.Name]; dup {
			l.add(0, joinPath(p, "name"), ErrDuplicate, "duplicate name %q (also checks[%d])", c.Name, j)
			continue
		}
		seen[c.Name] = i
	}
	return l.err()
}

// Validate reports every problem with c, joined, fields named as in YAML ("http.max_redirects"); nil when usable.
func (c *Check) Validate() error {
	l := newErrList("")
	for _, p := range c.problems() {
		l.add(0, p.field, p.kind, "%s", p.msg)
	}
	return l.err()
}

// problems lists what is wrong with c; field names are relative to the check.
// Messages must never quote header values, bodies, passwords or targets
// (which may carry a URL password).
func (c *Check) problems() []problem {
	var ps []problem
	add := func(field string, kind error, format string, args ...any) {
		ps = append(ps, probf(field, kind, format, args...))
	}

	switch {
	case c.Name == "":
		add("name", ErrMissingField, "required")
	case len(c.Name) > maxNameLen:
		add("name", ErrInvalidValue, "longer than %d bytes", maxNameLen)
	case !printable(c.Name):
		add("name", ErrInvalidValue, "must be printable UTF-8 text (no control characters)")
	}

	typ, knownType := lookupType(c.Type)
	switch {
	case c.Type == "":
		add("type", ErrMissingField, "required (one of %s)", strings.Join(Types(), ", "))
	case !knownType:
		add("type", ErrInvalidValue, "unknown type %q (want %s)", c.Type, orList(Types()))
	}

	if c.Target == "" {
		add("target", ErrMissingField, "required")
	} else if knownType {
		if msg := targetProblem(typ, c.Target); msg != "" {
			add("target", ErrInvalidValue, "%s", msg)
		}
	}

	if c.Interval < MinInterval {
		add("interval", ErrInvalidValue, "must be at least %s", MinInterval)
	}
	if c.Timeout <= 0 {
		add("timeout", ErrInvalidValue, "must be greater than 0")
	} else if c.Interval >= MinInterval && c.Timeout >= c.Interval {
		add("timeout", ErrInvalidValue, "must be less than interval (%s)", c.Interval)
	}
	if c.Jitter < 0 || c.Jitter > MaxJitter || math.IsNaN(c.Jitter) {
		add("jitter", ErrInvalidValue, "must be between 0 and %g", MaxJitter)
	}
	if c.FailureThreshold < 1 {
		add("failure_threshold", ErrInvalidValue, "must be at least 1")
	}
	if c.SuccessThreshold < 1 {
		add("success_threshold", ErrInvalidValue, "must be at least 1")
	}

	if c.EachAddress {
		switch {
		case knownType && !typ.eachAddress:
			add("each_address", ErrInvalidValue, "not supported by %s checks", c.Type)
		case knownType && targetIsIP(c):
			add("each_address", ErrInvalidValue, "target host is already an IP address")
		}
		if c.MaxAddresses < 1 || c.MaxAddresses > MaxMaxAddresses {
			add("max_addresses", ErrInvalidValue, "must be between 1 and %d", MaxMaxAddresses)
		}
	} else if c.MaxAddresses != 0 {
		add("max_addresses", ErrInvalidValue, "only used with each_address: true")
	}

	if !knownType {
		return ps
	}
	ps = append(ps, c.dialProblems()...)
	ps = append(ps, c.unusedSections(c.sectionSet)...)
	if typ.options != nil {
		ps = append(ps, prefixed(typ.section, typ.options(c).problems())...)
	}
	if typ.checkProblems != nil {
		ps = append(ps, typ.checkProblems(c)...)
	}
	if typ.usesTLS(c) {
		ps = append(ps, prefixed("tls", c.TLS.problems())...)
	}
	return ps
}

// unusedSections reports the options blocks that are set (as set says)
// but cannot take effect for c's type. The decoder asks it before reading
// the blocks, validation after.
func (c *Check) unusedSections(set func(section string) bool) []problem {
	typ, ok := lookupType(c.Type)
	if !ok {
		return nil
	}
	var ps []problem
	for _, other := range checkTypes {
		if other.section != "" && other.name != c.Type && set(other.section) {
			ps = append(ps, probf(other.section, ErrInvalidValue, "only used by %s checks", other.name))
		}
	}
	if !typ.usesTLS(c) && set("tls") {
		ps = append(ps, probf("tls", ErrInvalidValue, tlsUnusedMsg))
	}
	return ps
}

// sectionSet reports whether an options block of c holds anything.
func (c *Check) sectionSet(section string) bool {
	var block optionsBlock = &c.TLS
	if section != "tls" {
		t, ok := sectionType(section)
		if !ok {
			return false
		}
		block = t.options(c)
	}
	return !isZero(block)
}

const tlsUnusedMsg = "only used by tls and http checks, by tcp and grpc checks with tls: true, and by tcp checks with a starttls step"

func (o *HTTPOptions) problems() []problem {
	var ps []problem
	add := func(field string, kind error, format string, args ...any) {
		ps = append(ps, probf(field, kind, format, args...))
	}
	if !slices.Contains(methods, o.Method) {
		add("method", ErrInvalidValue, "unknown method %q (want %s)", o.Method, orList(methods))
	}
	canon := make(map[string]string, len(o.Headers))
	for _, name := range slices.Sorted(maps.Keys(o.Headers)) {
		value := o.Headers[name]
		f := joinPath("headers", name)
		if !httpguts.ValidHeaderFieldName(name) {
			add(f, ErrInvalidValue, "not a valid header name")
			continue
		}
		if !httpguts.ValidHeaderFieldValue(value) {
			// Never quote the value: it may be a token.
			add(f, ErrInvalidValue, "value contains a character not allowed in a header (e.g. a newline)")
		}
		ck := http.CanonicalHeaderKey(name)
		if other, dup := canon[ck]; dup {
			add(f, ErrDuplicate, "same header as %q", other)
		}
		canon[ck] = name
	}
	if o.BasicAuth != nil {
		switch {
		case o.BasicAuth.Username == "":
			add("basic_auth.username", ErrMissingField, "required")
		case strings.ContainsAny(o.BasicAuth.Username, ":\r\n"):
			add("basic_auth.username", ErrInvalidValue, "must not contain a colon or a newline")
		}
		if _, ok := canon["Authorization"]; ok {
			add("basic_auth", ErrInvalidValue, "conflicts with the Authorization header")
		}
	}
	for i, code := range o.ValidStatusCodes {
		if code < 100 || code > 599 {
			add(indexPath("valid_status_codes", i), ErrInvalidValue, "must be between 100 and 599")
		}
	}
	for i, re := range o.BodyMatches {
		if re == nil {
			add(indexPath("body_matches", i), ErrMissingField, "missing regular expression")
		}
	}
	for i, re := range o.BodyNotMatches {
		if re == nil {
			add(indexPath("body_not_matches", i), ErrMissingField, "missing regular expression")
		}
	}
	ps = append(ps, headerMatchProblems("header_matches", o.HeaderMatches)...)
	if o.NoFollowRedirects {
		if o.MaxRedirects != 0 {
			add("max_redirects", ErrInvalidValue, "has no effect when follow_redirects is false")
		}
	} else if o.MaxRedirects < 1 || o.MaxRedirects > MaxMaxRedirects {
		add("max_redirects", ErrInvalidValue, "must be between 1 and %d", MaxMaxRedirects)
	}
	return append(ps, o.transportProblems()...)
}

// problems: Send may be anything and Expect is compiled; a dialogue must
// say something in every step and start TLS at most once.
func (o *TCPOptions) problems() []problem {
	if len(o.QueryResponse) == 0 {
		return nil
	}
	var ps []problem
	if o.Send != "" || o.Expect != nil {
		ps = append(ps, probf("query_response", ErrInvalidValue, "set either send and expect or query_response, not both"))
	}
	tlsAt := -1
	for i, st := range o.QueryResponse {
		p := indexPath("query_response", i)
		switch {
		case st.Expect == nil && st.Send == "" && !st.StartTLS:
			ps = append(ps, probf(p, ErrMissingField, "needs expect, send or starttls"))
		case !st.StartTLS:
		case o.UseTLS:
			ps = append(ps, probf(p+".starttls", ErrInvalidValue, "the connection is already TLS (tcp.tls: true)"))
		case tlsAt >= 0:
			ps = append(ps, probf(p+".starttls", ErrInvalidValue, "TLS already started at query_response[%d]", tlsAt))
		default:
			tlsAt = i
		}
	}
	return ps
}

// startsTLS reports whether a step of the dialogue starts TLS.
func (o *TCPOptions) startsTLS() bool {
	return slices.ContainsFunc(o.QueryResponse, func(st QueryStep) bool { return st.StartTLS })
}

func (o *GRPCOptions) problems() []problem {
	if !printable(o.Service) {
		return []problem{probf("service", ErrInvalidValue, "must be printable UTF-8 text")}
	}
	return nil
}

func (o *DNSOptions) problems() []problem {
	var ps []problem
	add := func(field string, kind error, format string, args ...any) {
		ps = append(ps, probf(field, kind, format, args...))
	}
	if !slices.Contains(recordTypes, o.RecordType) {
		add("record_type", ErrInvalidValue, "unknown record type %q (want %s)", o.RecordType, orList(recordTypes))
	}
	if o.Server != "" {
		if msg := dnsServerProblem(o.Server); msg != "" {
			add("server", ErrInvalidValue, "%s (got %q)", msg, o.Server)
		}
	}
	if !slices.Contains(transports, o.Transport) {
		add("transport", ErrInvalidValue, "unknown transport %q (want %s)", o.Transport, orList(transports))
	}
	if len(o.ValidRcodes) == 0 {
		add("valid_rcodes", ErrInvalidValue, "must list at least one response code (e.g. NOERROR)")
	}
	for i, rc := range o.ValidRcodes {
		if rc < 0 || rc >= len(rcodes) {
			add(indexPath("valid_rcodes", i), ErrInvalidValue, "unknown response code %d (want 0 to %d)", rc, len(rcodes)-1)
		}
	}
	for i, a := range o.ExpectedAnswers {
		f := indexPath("expected_answers", i)
		ip := net.ParseIP(a)
		switch {
		case a == "":
			add(f, ErrInvalidValue, "must not be empty")
		case o.RecordType == "A" && (ip == nil || ip.To4() == nil):
			add(f, ErrInvalidValue, "%q is not an IPv4 address (record_type is A)", a)
		case o.RecordType == "AAAA" && (ip == nil || ip.To4() != nil):
			add(f, ErrInvalidValue, "%q is not an IPv6 address (record_type is AAAA)", a)
		}
	}
	return ps
}

func (o *TLSOptions) problems() []problem {
	var ps []problem
	if o.ServerName != "" && !validHostname(o.ServerName) {
		ps = append(ps, probf("server_name", ErrInvalidValue, "not a valid host name"))
	}
	if o.MinDaysLeft < 0 || o.MinDaysLeft > MaxMinDaysLeft {
		ps = append(ps, probf("min_days_left", ErrInvalidValue, "must be between 0 and %d", MaxMinDaysLeft))
	}
	if o.InsecureSkipVerify && o.CAFile != "" {
		ps = append(ps, probf("ca_file", ErrInvalidValue, "has no effect with insecure_skip_verify: true"))
	}
	return append(ps, o.clientProblems()...)
}

func prefixed(prefix string, ps []problem) []problem {
	for i := range ps {
		ps[i].field = prefix + "." + ps[i].field
	}
	return ps
}

// targetProblem says what is wrong with target for a check of type t, or "".
// It never quotes the target: it may hold a URL password.
func targetProblem(t checkType, target string) string {
	if len(target) > maxTargetLen {
		return fmt.Sprintf("longer than %d bytes", maxTargetLen)
	}
	if !printable(target) || strings.ContainsFunc(target, unicode.IsSpace) {
		return "must not contain spaces or control characters"
	}
	return t.targetProblem(target)
}

func dnsNameProblem(target string) string {
	if net.ParseIP(target) != nil {
		return "must be a DNS name, not an IP address"
	}
	if !validHostname(target) {
		return "must be a DNS name (e.g. example.com)"
	}
	return ""
}

// dnsServerProblem is hostPortProblem for a resolver, whose port may be
// left out.
func dnsServerProblem(s string) string {
	if net.ParseIP(s) == nil && !strings.Contains(s, ":") {
		if !validHostname(s) {
			return "not a valid host name or IP address"
		}
		return ""
	}
	return hostPortProblem(s)
}

func urlProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		// url.Parse's message quotes the URL, password included.
		return "must be an http:// or https:// URL"
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return "must be an http:// or https:// URL"
		}
		return fmt.Sprintf("scheme %q not supported (want http or https)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return "URL has no host"
	}
	if !validHost(u.Hostname()) {
		return "URL has an invalid host name"
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if !validPort(p) {
			return "URL port must be a number between 1 and 65535"
		}
	}
	return ""
}

func hostPortProblem(s string) string {
	if strings.Contains(s, "://") {
		return "must be host:port, not a URL"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "must be host:port (e.g. 10.0.0.1:22 or db.example.com:5432)"
	}
	if host == "" {
		return "host:port has no host"
	}
	if !validHost(host) {
		return "host:port has an invalid host name"
	}
	if !validPort(port) {
		return "port must be a number between 1 and 65535"
	}
	return ""
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && p[0] != '+'
}

func validHost(h string) bool {
	return net.ParseIP(h) != nil || validHostname(h)
}

// validHostname accepts DNS names as resolvers do: letters, digits, '-' and
// '_' (SRV names), labels of 1 to 63 bytes, an optional final dot.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// targetIsIP reports whether the host c dials is an IP literal, which
// each_address could not resolve to anything more.
func targetIsIP(c *Check) bool {
	d := *c
	d.derive()
	return net.ParseIP(d.Server.Host) != nil
}

func printable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func orList(list []string) string {
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}

// isZero reports whether v, or what it points at, is the zero value.
func isZero(v any) bool {
	return reflect.Indirect(reflect.ValueOf(v)).IsZero()
}

// redacted is what DisplayTarget shows instead of a URL password; the same
// as net/url's URL.Redacted.
const redacted = "xxxxx"

// DisplayTarget is the target with any URL password replaced by "xxxxx": use it everywhere instead of Target.
func (c *Check) DisplayTarget() string {
	// Logs, alerts, spans, metrics and /status all show this form
	// (http://user:xxxxx@host/).
	return RedactURL(c.Target)
}

// RedactURL replaces the password in s's userinfo, if any, by "xxxxx", even where url.Parse fails.
func RedactURL(s string) string {
	// Strings url.Parse rejects are handled too, so a malformed target never
	// leaks.
	if !strings.Contains(s, "://") {
		// host:port targets: url.Parse would read "A:1" as scheme "a" and lower-case it.
		return s
	}
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	// Fall back to finding "scheme://user:pass@" by hand. The userinfo may
	// end at any '@' before the query: a password with a raw '/' is what
	// made url.Parse fail. Redacting too much here is harmless.
	i := strings.Index(s, "://")
	if i < 0 {
		return s
	}
	rest := s[i+3:]
	end := strings.IndexAny(rest, "?#")
	if end < 0 {
		end = len(rest)
	}
	at := strings.LastIndex(rest[:end], "@")
	if at < 0 {
		return s
	}
	colon := strings.Index(rest[:at], ":")
	if colon < 0 {
		return s
	}
	return s[:i+3] + rest[:colon+1] + redacted + rest[at:]
}

// String describes the check without secrets: name, type and display target.
func (c Check) String() string {
	// It keeps fmt's %v of a Check (or of a struct holding one) from
	// printing header values, bodies or passwords.
	return fmt.Sprintf("%s (%s %s)", c.Name, c.Type, c.DisplayTarget())
}

// LogValue makes slog log a check as its name, type and display target only.
func (c Check) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", c.Name),
		slog.String("type", c.Type),
		slog.String("target", c.DisplayTarget()),
	)
}

// String shows the username and hides the password.
func (b BasicAuth) String() string {
	return b.Username + ":" + redacted
}

// GoString hides the password from %#v too.
func (b BasicAuth) GoString() string {
	return fmt.Sprintf("config.BasicAuth{Username:%q, Password:%q}", b.Username, redacted)
}

// LogValue hides the password from slog.
func (b BasicAuth) LogValue() slog.Value {
	return slog.StringValue(b.String())
}
