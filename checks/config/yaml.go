package config

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// The YAML format is a set of tagged structs that goccy/go-yaml decodes,
// resolving anchors, aliases and merge keys once prepare has reported the
// broken ones and put merges where the library takes them. Leaves are kept
// as ast.Node
// and typed below, and mappings and lists are wrapped in obj and list,
// which record a value of the wrong shape instead of failing: one bad value
// never stops the decode, so every problem in the file is reported at
// once. The struct tags are the one schema: unknown keys are found by
// comparing a mapping's keys with them. yaml.Strict is not used because it
// stops at the first unknown key.

// fileYAML is the whole file.
type fileYAML struct {
	Defaults obj[timingYAML]      `yaml:"defaults"`
	Checks   list[obj[checkYAML]] `yaml:"checks"`
}

// extensionPrefix marks top-level keys that are ignored, as x-* keys in
// docker-compose files: a place to define YAML anchors for checks to merge.
func (fileYAML) extensionPrefix() string { return "x-" }

// timingYAML is the defaults block, and the same keys in a check.
type timingYAML struct {
	Interval         ast.Node `yaml:"interval"`          // a duration with a unit
	Timeout          ast.Node `yaml:"timeout"`           // inherited: capped at half a shorter interval
	Jitter           ast.Node `yaml:"jitter"`            // a fraction of the interval
	FailureThreshold ast.Node `yaml:"failure_threshold"` // failed runs before ALERT
	SuccessThreshold ast.Node `yaml:"success_threshold"` // passed runs before NOTICE
}

// checkYAML is one item of the checks list.
type checkYAML struct {
	Name         ast.Node            `yaml:"name"`
	Type         ast.Node            `yaml:"type"`
	Target       ast.Node            `yaml:"target"`
	Timing       timingYAML          `yaml:",inline"`
	EachAddress  ast.Node            `yaml:"each_address"`
	MaxAddresses ast.Node            `yaml:"max_addresses"`
	Peers        obj[peersYAML]      `yaml:"peers"`
	HTTP         obj[httpYAML]       `yaml:"http"`
	TCP          obj[tcpYAML]        `yaml:"tcp"`
	TLS          obj[tlsYAML]        `yaml:"tls"`
	DNS          obj[dnsYAML]        `yaml:"dns"`
	GRPC         obj[grpcYAML]       `yaml:"grpc"`
	Dial         dialYAML            `yaml:",inline"`
	ICMP         obj[icmpYAML]       `yaml:"icmp"`
	MTU          obj[mtuYAML]        `yaml:"mtu"`
	Throughput   obj[throughputYAML] `yaml:"throughput"`
}

// httpYAML is the http block: request, expectations, redirects, credentials.
type httpYAML struct {
	Method           ast.Node                   `yaml:"method"`
	Headers          obj[map[string]ast.Node]   `yaml:"headers"`
	Body             ast.Node                   `yaml:"body"`
	ValidStatusCodes list[ast.Node]             `yaml:"valid_status_codes"`
	BodyMatches      list[ast.Node]             `yaml:"body_matches"`
	BodyNotMatches   list[ast.Node]             `yaml:"body_not_matches"`
	HeaderMatches    list[obj[headerMatchYAML]] `yaml:"header_matches"`
	FollowRedirects  ast.Node                   `yaml:"follow_redirects"`
	MaxRedirects     ast.Node                   `yaml:"max_redirects"`
	BasicAuth        obj[basicAuthYAML]         `yaml:"basic_auth"`
	Version          ast.Node                   `yaml:"version"`        // 1.1 or 2; default: negotiated
	MaxBodyBytes     ast.Node                   `yaml:"max_body_bytes"` // only with body regexps
	HeaderNotMatches list[obj[headerMatchYAML]] `yaml:"header_not_matches"`
	FailIfSSL        ast.Node                   `yaml:"fail_if_ssl"`
	FailIfNotSSL     ast.Node                   `yaml:"fail_if_not_ssl"`
	ProxyURL         ast.Node                   `yaml:"proxy_url"` // may hold ${env:...} secrets
}

// basicAuthYAML is http.basic_auth; password and password_file exclude each other.
type basicAuthYAML struct {
	Username     ast.Node `yaml:"username"`
	Password     ast.Node `yaml:"password"`
	PasswordFile ast.Node `yaml:"password_file"`
}

// headerMatchYAML is one item of http.header_matches.
type headerMatchYAML struct {
	Header ast.Node `yaml:"header"`
	Regexp ast.Node `yaml:"regexp"`
}

// tcpYAML is the tcp block: what to send, what to expect back, TLS or not.
type tcpYAML struct {
	Send          ast.Node                 `yaml:"send"`   // may hold ${env:...} and ${file:...} secrets
	Expect        ast.Node                 `yaml:"expect"` // a regular expression for a line read back
	TLS           ast.Node                 `yaml:"tls"`
	QueryResponse list[obj[queryStepYAML]] `yaml:"query_response"` // blackbox_exporter's dialogue steps
}

// queryStepYAML is one item of tcp.query_response.
type queryStepYAML struct {
	Expect   ast.Node `yaml:"expect"`
	Send     ast.Node `yaml:"send"` // a secret, as tcp.send
	StartTLS ast.Node `yaml:"starttls"`
}

// tlsYAML is the tls block, for every type that speaks TLS.
type tlsYAML struct {
	InsecureSkipVerify ast.Node `yaml:"insecure_skip_verify"`
	CAFile             ast.Node `yaml:"ca_file"` // read and checked while loading
	ServerName         ast.Node `yaml:"server_name"`
	MinDaysLeft        ast.Node `yaml:"min_days_left"` // 0: off
	CertFile           ast.Node `yaml:"cert_file"`     // with key_file: the client certificate
	KeyFile            ast.Node `yaml:"key_file"`
	MinVersion         ast.Node `yaml:"min_version"` // 1.0 to 1.3
	AllowExpired       ast.Node `yaml:"allow_expired"`
}

// dnsYAML is the dns block: resolver, transport, record type, what passes.
type dnsYAML struct {
	Server          ast.Node       `yaml:"server"`
	Transport       ast.Node       `yaml:"transport"`
	RecordType      ast.Node       `yaml:"record_type"`
	ValidRcodes     list[ast.Node] `yaml:"valid_rcodes"` // names such as NOERROR, NXDOMAIN
	FailIfNoAnswer  ast.Node       `yaml:"fail_if_no_answer"`
	ExpectedAnswers list[ast.Node] `yaml:"expected_answers"`
}

// grpcYAML is the grpc block: health service name, TLS or not.
type grpcYAML struct {
	Service ast.Node `yaml:"service"`
	TLS     ast.Node `yaml:"tls"`
}

// obj is a mapping of the format: v holds the decoded fields, keys every
// key (merges expanded) with its value. set is false when the key is
// absent or null; err is set when the value is not a mapping.
type obj[T any] struct {
	v    T
	set  bool
	keys map[string]ast.Node
	err  error
}

// UnmarshalYAML never fails, so that the rest of the file is still decoded.
// (The library does not call it for null.)
func (o *obj[T]) UnmarshalYAML(unmarshal func(any) error) error {
	o.set = true
	if o.err = unmarshal(&o.keys); o.err == nil {
		o.err = unmarshal(&o.v)
	}
	return nil
}

// list is a sequence of the format; node as in obj.
type list[T any] struct {
	items []T
	node  ast.Node
	err   error
}

// UnmarshalYAML never fails, so that the rest of the file is still decoded.
func (l *list[T]) UnmarshalYAML(unmarshal func(any) error) error {
	if err := unmarshal(&l.node); err != nil {
		l.err = err
		return nil
	}
	if _, ok := l.node.(*ast.SequenceNode); ok {
		if err := unmarshal(&l.items); err != nil {
			l.err = err
		}
	}
	return nil
}

// yamlKeys lists the keys a struct of the format accepts, from its tags.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case opts == "inline":
			keys = append(keys, yamlKeys(f.Type)...)
		case name != "":
			keys = append(keys, name)
		}
	}
	return keys
}

type yamlDecoder struct {
	l       *errList
	file    *ast.File
	body    ast.Node
	res     secretResolver
	given   map[string]bool     // field paths the file sets to a non-null value
	anchors map[string]ast.Node // by name, the last of each
}

func parseYAML(path string, data []byte, res secretResolver) (*File, error) {
	d := &yamlDecoder{l: newErrList(path), res: res, given: map[string]bool{}, anchors: map[string]ast.Node{}}
	file, err := safeParse(data)
	if err != nil {
		line, msg := 0, err.Error()
		var ye yaml.Error
		if errors.As(err, &ye) {
			msg = ye.GetMessage()
			if tk := ye.GetToken(); tk != nil {
				line = tk.Position.Line
			}
		}
		d.l.add(line, "", ErrSyntax, "invalid YAML: %s", msg)
		return nil, d.l.err()
	}
	d.file = file
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if d.body != nil {
			d.l.add(lineOf(doc.Body), "", ErrSyntax, "more than one YAML document")
			return nil, d.l.err()
		}
		d.body = doc.Body
	}
	if d.body == nil {
		d.l.add(0, "", ErrMissingField, `empty file (want a "checks" list)`)
		return nil, d.l.err()
	}
	d.prepare()
	var top obj[fileYAML]
	if err := safeDecode(d.body, &top); err != nil {
		d.l.add(lineOf(d.body), "", ErrSyntax, "invalid YAML: %s", yamlMessage(err))
		return nil, d.l.err()
	}
	if !openObj(d, &top, "", `must be a mapping with a "checks" list`) {
		if !top.set {
			d.l.add(lineOf(d.body), "", ErrWrongType, `must be a mapping with a "checks" list`)
		}
		return nil, d.l.err()
	}
	f := d.checks(&top.v, d.defaults(&top.v.Defaults))
	if err := d.l.err(); err != nil {
		return nil, err
	}
	f.Path = path
	return f, nil
}

func (d *yamlDecoder) checks(top *fileYAML, def Check) *File {
	f := &File{}
	items, ok := top.Checks.get(d, "checks")
	if !ok && !d.l.covered("checks") {
		d.l.add(d.lineFor(""), "checks", ErrMissingField, "required (use [] for none)")
	}
	names := map[string]int{}
	for i := range items {
		p := indexPath("checks", i)
		if !items[i].set || items[i].err != nil {
			// Reported at the item's own line, even when it is an alias.
			line := d.lineFor(p)
			if seq, ok := top.Checks.node.(*ast.SequenceNode); ok && i < len(seq.Values) {
				line = lineOf(seq.Values[i])
			}
			d.l.add(line, p, ErrWrongType, "must be a mapping")
			continue
		}
		c, ok := d.check(&items[i], p, def)
		if !ok {
			continue
		}
		for _, pr := range c.problems() {
			field := subPath(p, pr.field)
			if !d.l.covered(field) {
				d.l.add(d.lineFor(field), field, pr.kind, "%s", pr.msg)
			}
		}
		if c.Name != "" {
			field := joinPath(p, "name")
			if first, dup := names[c.Name]; dup {
				d.l.add(d.lineFor(field), field, ErrDuplicate, "duplicate name %q (first at line %d)", c.Name, first)
			} else {
				names[c.Name] = d.lineFor(field)
			}
		}
		f.Checks = append(f.Checks, c)
	}
	return f
}

// maxDepth bounds nesting (the schema itself is at most six deep) so a
// hostile file cannot exhaust the stack.
const maxDepth = 1000

const yamlParserPanicMsg = "the YAML parser failed on this input"

// safeParse runs the YAML parser, turning a panic into an error: the
// parser is third-party code fed untrusted bytes, and a bad reload must
// never take the sidecar down.
func safeParse(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, errors.New(yamlParserPanicMsg)
		}
	}()
	return parser.ParseBytes(data, 0)
}

// safeDecode decodes the parsed tree into v, a panic becoming an error as
// in safeParse. The parser has already rejected repeated keys; allowing
// them here lets an explicit key override one merged in with <<.
func safeDecode(n ast.Node, v any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New(yamlParserPanicMsg)
		}
	}()
	return yaml.NodeToValue(n, v, yaml.AllowDuplicateMapKey())
}

func yamlMessage(err error) string {
	var ye yaml.Error
	if errors.As(err, &ye) {
		return ye.GetMessage()
	}
	return err.Error()
}

// openObj reports what is wrong with the shape of o at path: not a
// mapping, a failed merge, unknown keys. ok is false when o is absent,
// null or not usable.
func openObj[T any](d *yamlDecoder, o *obj[T], path, notMapping string) bool {
	if !o.set {
		return false
	}
	if o.err != nil {
		// Merges were checked by prepare: the value is not a mapping.
		d.fail(path, ErrWrongType, "%s", notMapping)
		return false
	}
	t := reflect.TypeFor[T]()
	known, prefix := []string(nil), ""
	if t.Kind() == reflect.Struct {
		known = yamlKeys(t)
	}
	if e, ok := any(o.v).(interface{ extensionPrefix() string }); ok {
		prefix = e.extensionPrefix()
	}
	// Map order is fine: errors are sorted by line when reported.
	for k, n := range o.keys {
		field := joinPath(path, k)
		switch {
		case known != nil && !slices.Contains(known, k) && (prefix == "" || !strings.HasPrefix(k, prefix)):
			d.l.add(d.lineFor(field), field, ErrUnknownField, "unknown field%s", suggest(k, known))
		case !isNull(n):
			d.given[field] = true
		}
	}
	return true
}

// sortedKeys lists a mapping's keys in file order.
func (d *yamlDecoder) sortedKeys(m map[string]ast.Node, path string) []string {
	lines := make(map[string]int, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
		lines[k] = d.lineFor(joinPath(path, k))
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(lines[a], lines[b]), strings.Compare(a, b))
	})
	return keys
}

// get returns the items; ok is false when absent, null or not a list.
func (l *list[T]) get(d *yamlDecoder, path string) ([]T, bool) {
	if l.node == nil {
		return nil, false
	}
	if _, ok := l.node.(*ast.SequenceNode); !ok || l.err != nil {
		d.l.add(d.lineFor(path), path, ErrWrongType, "must be a list")
		return nil, false
	}
	return l.items, true
}

// defaults reads the defaults block into a Check holding the inherited
// values. It is validated by the checks' own rules (problems); an invalid
// default is reported once, and the built-in value used instead so the
// error is not repeated for every check.
func (d *yamlDecoder) defaults(o *obj[timingYAML]) Check {
	builtin := Check{Interval: DefaultInterval, Timeout: DefaultTimeout, Jitter: DefaultJitter,
		FailureThreshold: DefaultFailureThreshold, SuccessThreshold: DefaultSuccessThreshold}
	if !openObj(d, o, "defaults", "must be a mapping") {
		return builtin
	}
	def := builtin
	d.timing(&o.v, "defaults", &def)
	for _, p := range def.problems() {
		field := joinPath("defaults", p.field)
		if !d.given[field] || d.l.covered(field) {
			continue
		}
		d.l.add(d.lineFor(field), field, p.kind, "%s", p.msg)
		switch p.field {
		case "interval":
			def.Interval = builtin.Interval
		case "timeout":
			def.Timeout = builtin.Timeout
		case "jitter":
			def.Jitter = builtin.Jitter
		case "failure_threshold":
			def.FailureThreshold = builtin.FailureThreshold
		case "success_threshold":
			def.SuccessThreshold = builtin.SuccessThreshold
		}
	}
	return def
}

// timing reads the keys a check shares with the defaults block into c,
// leaving the fields the file does not set alone.
func (d *yamlDecoder) timing(r *timingYAML, path string, c *Check) {
	if v, ok := d.duration(r.Interval, joinPath(path, "interval")); ok {
		c.Interval = v
	}
	if v, ok := d.duration(r.Timeout, joinPath(path, "timeout")); ok {
		c.Timeout = v
	}
	if v, ok := d.float(r.Jitter, joinPath(path, "jitter")); ok {
		c.Jitter = v
	}
	if v, ok := d.integer(r.FailureThreshold, joinPath(path, "failure_threshold")); ok {
		c.FailureThreshold = v
	}
	if v, ok := d.integer(r.SuccessThreshold, joinPath(path, "success_threshold")); ok {
		c.SuccessThreshold = v
	}
}

func (d *yamlDecoder) check(o *obj[checkYAML], path string, def Check) (Check, bool) {
	if !openObj(d, o, path, "must be a mapping") {
		return Check{}, false
	}
	r := &o.v
	var c Check
	c.Name, _ = d.str(r.Name, joinPath(path, "name"))
	if t, ok := d.str(r.Type, joinPath(path, "type")); ok {
		c.Type = strings.ToLower(t)
	}
	c.Target, _ = d.str(r.Target, joinPath(path, "target"))
	c.Interval, c.Jitter = def.Interval, def.Jitter
	c.FailureThreshold, c.SuccessThreshold = def.FailureThreshold, def.SuccessThreshold
	d.timing(&r.Timing, path, &c)
	if !d.given[joinPath(path, "timeout")] {
		c.Timeout = inheritedTimeout(def.Timeout, c.Interval)
	}
	c.EachAddress, _ = d.boolean(r.EachAddress, joinPath(path, "each_address"))
	c.MaxAddresses, _ = d.integer(r.MaxAddresses, joinPath(path, "max_addresses"))
	c.Peers = d.peers(&r.Peers, joinPath(path, "peers"))
	c.Dial = d.dialOptions(&r.Dial, path)

	// A type's own block is read first: tcp.tls and grpc.tls decide whether
	// the tls block is usable. With an unknown type the type error says it all.
	if typ, known := lookupType(c.Type); known {
		if typ.decodeYAML != nil {
			typ.decodeYAML(d, r, joinPath(path, typ.section), &c)
		}
		unused := map[string]bool{}
		for _, p := range c.unusedSections(func(s string) bool { return d.given[joinPath(path, s)] }) {
			field := joinPath(path, p.field)
			unused[p.field] = true
			d.l.add(d.lineFor(field), field, p.kind, "%s", p.msg)
		}
		if !unused["tls"] {
			c.TLS = d.tlsOptions(&r.TLS, joinPath(path, "tls"))
		}
	}
	c.applyDefaults(func(field string) bool { return d.given[subPath(path, field)] })
	return c, true
}

func (d *yamlDecoder) httpOptions(o *obj[httpYAML], path string) HTTPOptions {
	var h HTTPOptions
	if !openObj(d, o, path, "must be a mapping") {
		return h
	}
	r := &o.v
	at := func(key string) string { return joinPath(path, key) }
	if m, ok := d.str(r.Method, at("method")); ok {
		h.Method = strings.ToUpper(m)
	}
	h.Headers = d.headers(&r.Headers, at("headers"))
	h.Body, _ = d.secret(r.Body, at("body"))
	codes, _ := r.ValidStatusCodes.get(d, at("valid_status_codes"))
	for i, n := range codes {
		if v, ok := d.integer(n, indexPath(at("valid_status_codes"), i)); ok {
			h.ValidStatusCodes = append(h.ValidStatusCodes, v)
		}
	}
	h.BodyMatches = d.regexps(&r.BodyMatches, at("body_matches"))
	h.BodyNotMatches = d.regexps(&r.BodyNotMatches, at("body_not_matches"))
	h.HeaderMatches = d.headerMatches(&r.HeaderMatches, at("header_matches"))
	if v, ok := d.boolean(r.FollowRedirects, at("follow_redirects")); ok {
		h.NoFollowRedirects = !v
	}
	h.MaxRedirects, _ = d.integer(r.MaxRedirects, at("max_redirects"))
	h.BasicAuth = d.basicAuth(&r.BasicAuth, at("basic_auth"))
	d.httpTransport(r, path, &h)
	return h
}

func (d *yamlDecoder) headerMatches(l *list[obj[headerMatchYAML]], path string) []HeaderMatch {
	matches, _ := l.get(d, path)
	var res []HeaderMatch
	for i := range matches {
		p := indexPath(path, i)
		m := &matches[i]
		if !m.set {
			d.l.add(d.lineFor(p), p, ErrWrongType, "must be a mapping with header and regexp")
			continue
		}
		if !openObj(d, m, p, "must be a mapping with header and regexp") {
			continue
		}
		var hm HeaderMatch
		hm.Header, _ = d.str(m.v.Header, joinPath(p, "header"))
		hm.Regexp, _ = d.regexp(m.v.Regexp, joinPath(p, "regexp"))
		res = append(res, hm)
	}
	return res
}

func (d *yamlDecoder) headers(o *obj[map[string]ast.Node], path string) map[string]string {
	if !openObj(d, o, path, "must be a mapping") {
		return nil
	}
	hs := make(map[string]string, len(o.v))
	first := map[string]int{} // canonical name -> line
	for _, k := range d.sortedKeys(o.v, path) {
		field := joinPath(path, k)
		ck := http.CanonicalHeaderKey(k)
		if line, dup := first[ck]; dup {
			d.fail(field, ErrDuplicate, "same header as line %d", line)
			continue
		}
		first[ck] = d.lineFor(field)
		if v, ok := d.secret(o.v[k], field); ok {
			hs[k] = v
		} else if !d.l.covered(field) {
			hs[k] = ""
		}
	}
	return hs
}

func (d *yamlDecoder) basicAuth(o *obj[basicAuthYAML], path string) *BasicAuth {
	if !openObj(d, o, path, "must be a mapping") {
		return nil
	}
	r := &o.v
	var a BasicAuth
	a.Username, _ = d.secret(r.Username, joinPath(path, "username"))
	pw, hasPW := d.secret(r.Password, joinPath(path, "password"))
	if field := joinPath(path, "password_file"); d.given[field] {
		if hasPW || d.l.covered(joinPath(path, "password")) {
			d.fail(field, ErrInvalidValue, "set either password or password_file, not both")
		} else if p, ok := d.str(r.PasswordFile, field); ok {
			data, err := readSmallFile(d.res.path(p))
			if err != nil {
				d.fail(field, ErrSecret, "%v", err)
			}
			pw = trimNewline(string(data))
		}
	}
	a.Password = pw
	return &a
}

func (d *yamlDecoder) tcpOptions(o *obj[tcpYAML], path string) TCPOptions {
	var t TCPOptions
	if openObj(d, o, path, "must be a mapping") {
		t.Send, _ = d.secret(o.v.Send, joinPath(path, "send"))
		t.Expect, _ = d.regexp(o.v.Expect, joinPath(path, "expect"))
		t.UseTLS, _ = d.boolean(o.v.TLS, joinPath(path, "tls"))
		t.QueryResponse = d.querySteps(&o.v.QueryResponse, joinPath(path, "query_response"))
	}
	return t
}

func (d *yamlDecoder) querySteps(l *list[obj[queryStepYAML]], path string) []QueryStep {
	items, _ := l.get(d, path)
	var steps []QueryStep
	for i := range items {
		p := indexPath(path, i)
		const notMapping = "must be a mapping with expect, send or starttls"
		if !items[i].set {
			d.fail(p, ErrWrongType, notMapping)
			continue
		}
		if !openObj(d, &items[i], p, notMapping) {
			continue
		}
		r := &items[i].v
		var st QueryStep
		st.Expect, _ = d.regexp(r.Expect, joinPath(p, "expect"))
		st.Send, _ = d.secret(r.Send, joinPath(p, "send"))
		st.StartTLS, _ = d.boolean(r.StartTLS, joinPath(p, "starttls"))
		steps = append(steps, st)
	}
	return steps
}

func (d *yamlDecoder) grpcOptions(o *obj[grpcYAML], path string) GRPCOptions {
	var g GRPCOptions
	if openObj(d, o, path, "must be a mapping") {
		g.Service, _ = d.str(o.v.Service, joinPath(path, "service"))
		g.UseTLS, _ = d.boolean(o.v.TLS, joinPath(path, "tls"))
	}
	return g
}

func (d *yamlDecoder) dnsOptions(o *obj[dnsYAML], path string) DNSOptions {
	var opts DNSOptions
	if !openObj(d, o, path, "must be a mapping") {
		return opts
	}
	opts.Server, _ = d.str(o.v.Server, joinPath(path, "server"))
	if rt, ok := d.str(o.v.RecordType, joinPath(path, "record_type")); ok {
		opts.RecordType = strings.ToUpper(rt)
	}
	if tr, ok := d.str(o.v.Transport, joinPath(path, "transport")); ok {
		opts.Transport = strings.ToLower(tr)
	}
	opts.FailIfNoAnswer, _ = d.boolean(o.v.FailIfNoAnswer, joinPath(path, "fail_if_no_answer"))
	opts.ValidRcodes = d.rcodes(&o.v.ValidRcodes, joinPath(path, "valid_rcodes"))
	answers, _ := o.v.ExpectedAnswers.get(d, joinPath(path, "expected_answers"))
	for i, n := range answers {
		if s, ok := d.str(n, indexPath(joinPath(path, "expected_answers"), i)); ok {
			opts.ExpectedAnswers = append(opts.ExpectedAnswers, s)
		}
	}
	return opts
}

// rcodes reads response code names (NOERROR, nxdomain) as their values.
func (d *yamlDecoder) rcodes(l *list[ast.Node], path string) []int {
	items, ok := l.get(d, path)
	if !ok {
		return nil
	}
	codes := make([]int, 0, len(items))
	for i, n := range items {
		p := indexPath(path, i)
		name, ok := d.str(n, p)
		if !ok {
			continue
		}
		code := slices.Index(rcodes, strings.ToUpper(name))
		if code < 0 {
			d.fail(p, ErrInvalidValue, "unknown response code %q (want %s)", name, orList(rcodes))
			continue
		}
		codes = append(codes, code)
	}
	return codes
}

func (d *yamlDecoder) tlsOptions(o *obj[tlsYAML], path string) TLSOptions {
	var t TLSOptions
	if !openObj(d, o, path, "must be a mapping") {
		return t
	}
	r := &o.v
	t.InsecureSkipVerify, _ = d.boolean(r.InsecureSkipVerify, joinPath(path, "insecure_skip_verify"))
	field := joinPath(path, "ca_file")
	if p, ok := d.str(r.CAFile, field); ok {
		t.CAFile = d.res.path(p)
		// Read it now: a missing or empty CA file is a config error, not a
		// failure of every run.
		data, err := readSmallFile(t.CAFile)
		switch {
		case err != nil:
			d.fail(field, ErrInvalidValue, "%v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			d.fail(field, ErrInvalidValue, "no PEM certificate in %q", t.CAFile)
		}
	}
	t.ServerName, _ = d.str(r.ServerName, joinPath(path, "server_name"))
	t.MinDaysLeft, _ = d.integer(r.MinDaysLeft, joinPath(path, "min_days_left"))
	d.tlsClient(r, path, &t)
	return t
}

// lineFor finds the line of a field path in the parsed tree, falling back
// to its closest enclosing path that has one (a missing field is reported
// where its mapping starts; a merged one where it is merged).
func (d *yamlDecoder) lineFor(path string) int {
	for path != "" {
		if line := d.lineAt(path); line > 0 {
			return line
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return lineOf(d.body)
}

// lineAt follows path one step at a time with the library's YAML paths,
// looking through anchors, tags and aliases between steps; 0 when the path
// is not written out in the file.
func (d *yamlDecoder) lineAt(path string) int {
	steps, ok := yamlPathSteps(path)
	if !ok {
		return 0
	}
	n := d.body
	for _, step := range steps {
		next, err := step.FilterNode(d.unwrap(n))
		if err != nil || next == nil {
			return 0
		}
		n = next
	}
	return lineOf(n)
}

// unwrap looks through anchors, tags and aliases to the node holding a value.
func (d *yamlDecoder) unwrap(n ast.Node) ast.Node {
	for range 64 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil || v.Value.GetToken() == nil {
				return n
			}
			n = d.anchors[v.Value.GetToken().Value]
		default:
			return n
		}
	}
	return n
}

// yamlPathSteps turns a field path ("checks[0].http.headers[\"X Y\"]") into
// one YAML path of the library per step.
func yamlPathSteps(path string) ([]*yaml.Path, bool) {
	var steps []*yaml.Path
	root := func() *yaml.PathBuilder { return (&yaml.PathBuilder{}).Root() }
	for path != "" {
		switch {
		case path[0] == '.':
			path = path[1:]
		case strings.HasPrefix(path, `["`):
			q, err := strconv.QuotedPrefix(path[1:])
			if err != nil {
				return nil, false
			}
			key, _ := strconv.Unquote(q)
			steps = append(steps, root().Child(key).Build())
			path = strings.TrimPrefix(path[1+len(q):], "]")
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return nil, false
			}
			i, err := strconv.ParseUint(path[1:end], 10, 32)
			if err != nil {
				return nil, false
			}
			steps = append(steps, root().Index(uint(i)).Build())
			path = path[end+1:]
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			steps = append(steps, root().Child(path[:end]).Build())
			path = path[end:]
		}
	}
	return steps, true
}

func isNull(n ast.Node) bool {
	_, null := n.(*ast.NullNode)
	return n == nil || null
}

// leaf looks through tags to a leaf's value; ok is false when it is null
// (unset) or an alias the library could not resolve (error recorded).
func (d *yamlDecoder) leaf(n ast.Node, path string) (ast.Node, bool) {
	for depth := 0; depth < maxDepth; depth++ {
		t, ok := n.(*ast.TagNode)
		if !ok {
			break
		}
		n = t.Value
	}
	if a, ok := n.(*ast.AliasNode); ok {
		name := ""
		if a.Value != nil && a.Value.GetToken() != nil {
			name = a.Value.GetToken().Value
		}
		d.l.add(d.lineFor(path), path, ErrSyntax, "unknown alias *%s", name)
		return nil, false
	}
	return n, !isNull(n)
}

func (d *yamlDecoder) fail(path string, kind error, format string, args ...any) {
	d.l.add(d.lineFor(path), path, kind, format, args...)
}

func (d *yamlDecoder) str(n ast.Node, path string) (string, bool) {
	n, ok := d.leaf(n, path)
	if !ok {
		return "", false
	}
	s, ok := scalarText(n)
	if !ok {
		d.fail(path, ErrWrongType, "must be a string")
	}
	return s, ok
}

func (d *yamlDecoder) secret(n ast.Node, path string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	v, err := d.res.resolve(s)
	if err != nil {
		d.fail(path, ErrSecret, "%v", err)
		return "", false
	}
	return v, true
}

func (d *yamlDecoder) integer(n ast.Node, path string) (int, bool) {
	n, ok := d.leaf(n, path)
	if !ok {
		return 0, false
	}
	if v, ok := n.(*ast.IntegerNode); ok {
		switch i := v.Value.(type) {
		case int64:
			if i >= math.MinInt && i <= math.MaxInt {
				return int(i), true
			}
		case uint64:
			if i <= math.MaxInt {
				return int(i), true
			}
		}
	}
	d.fail(path, ErrWrongType, "must be a whole number")
	return 0, false
}

func (d *yamlDecoder) boolean(n ast.Node, path string) (bool, bool) {
	n, ok := d.leaf(n, path)
	if !ok {
		return false, false
	}
	if b, ok := n.(*ast.BoolNode); ok {
		return b.Value, true
	}
	d.fail(path, ErrWrongType, "must be true or false")
	return false, false
}

func (d *yamlDecoder) float(n ast.Node, path string) (float64, bool) {
	n, ok := d.leaf(n, path)
	if !ok {
		return 0, false
	}
	switch v := n.(type) {
	case *ast.FloatNode:
		return v.Value, true
	case *ast.IntegerNode:
		switch i := v.Value.(type) {
		case int64:
			return float64(i), true
		case uint64:
			return float64(i), true
		}
	}
	d.fail(path, ErrWrongType, "must be a number")
	return 0, false
}

func (d *yamlDecoder) duration(n ast.Node, path string) (time.Duration, bool) {
	n, ok := d.leaf(n, path)
	if !ok {
		return 0, false
	}
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		d.fail(path, ErrWrongType, "must be a duration with a unit, such as 30s (got %s)", n.GetToken().Value)
		return 0, false
	}
	s, ok := scalarText(n)
	if !ok {
		d.fail(path, ErrWrongType, "must be a duration such as 30s or 1m30s")
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		d.fail(path, ErrInvalidValue, "must be a duration such as 30s or 1m30s (got %q)", s)
		return 0, false
	}
	return v, true
}

func (d *yamlDecoder) regexp(n ast.Node, path string) (*regexp.Regexp, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return nil, false
	}
	re, err := compileRegexp(s)
	if err != nil {
		d.fail(path, ErrInvalidValue, "%v", err)
		return nil, false
	}
	return re, true
}

func (d *yamlDecoder) regexps(l *list[ast.Node], path string) []*regexp.Regexp {
	items, _ := l.get(d, path)
	var res []*regexp.Regexp
	for i, n := range items {
		if re, ok := d.regexp(n, indexPath(path, i)); ok {
			res = append(res, re)
		}
	}
	return res
}

// scalarText is the text of a scalar. Numbers and booleans keep their
// source spelling, so `send: 0x10` means the string "0x10".
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return n.GetToken().Value, true
	}
	return "", false
}

func compileRegexp(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Position.Line
	}
	return 0
}

// suggest returns ` (did you mean "x"?)` for a near miss of a known key.
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if dist := editDistance(strings.ToLower(key), strings.ToLower(k)); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// prepare readies the tree for the library's decoder, which stops at the
// first alias without an anchor or merge of a non-mapping, and which
// neither takes a list of mappings after << nor lets an explicit key
// written before << win. It reports the first two with their field paths
// and drops them, and rewrites each mapping so its merges come first, one
// per mapping, the first listed last (so it wins, as YAML says).
func (d *yamlDecoder) prepare() {
	anchors := d.anchors
	var walk func(n ast.Node, path string, depth int) ast.Node
	walk = func(n ast.Node, path string, depth int) ast.Node {
		if n == nil || depth > maxDepth {
			return n
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			// An alias inside the anchored value refers to it: YAML takes the
			// latest anchor before the alias.
			if v.Name != nil && v.Name.GetToken() != nil {
				anchors[v.Name.GetToken().Value] = v.Value
			}
			v.Value = walk(v.Value, path, depth+1)
		case *ast.TagNode:
			v.Value = walk(v.Value, path, depth+1)
		case *ast.AliasNode:
			if v.Value == nil || v.Value.GetToken() == nil || anchors[v.Value.GetToken().Value] == nil {
				d.l.add(lineOf(v), path, ErrSyntax, "unknown alias %s", strings.TrimSpace(v.String()))
				return ast.Null(v.GetToken())
			}
		case *ast.SequenceNode:
			for i, item := range v.Values {
				v.Values[i] = walk(item, indexPath(path, i), depth+1)
			}
		case *ast.MappingNode:
			var merges, rest []*ast.MappingValueNode
			for _, mv := range v.Values {
				if mv == nil || mv.Key == nil {
					continue
				}
				if !mv.Key.IsMergeKey() {
					key, _ := scalarText(mv.Key)
					mv.Value = walk(mv.Value, joinPath(path, key), depth+1)
					rest = append(rest, mv)
					continue
				}
				mv.Value = walk(mv.Value, path, depth+1)
				merges = append(merges, d.mergeSources(v, mv, path)...)
			}
			v.Values = append(merges, rest...)
		}
		return n
	}
	d.body = walk(d.body, "", 0)
}

// mergeSources splits "<<: [*a, *b]" into one merge entry per mapping, the
// first last; an entry that is not a mapping is reported, and one that is
// m itself dropped (it adds nothing, and the library cannot decode it).
func (d *yamlDecoder) mergeSources(m *ast.MappingNode, mv *ast.MappingValueNode, path string) []*ast.MappingValueNode {
	sources := []ast.Node{mv.Value}
	if seq, ok := d.unwrap(mv.Value).(*ast.SequenceNode); ok {
		sources = seq.Values
	}
	var out []*ast.MappingValueNode
	for _, src := range slices.Backward(sources) {
		target, ok := d.unwrap(src).(*ast.MappingNode)
		if target == m {
			continue
		}
		if !ok {
			if !d.l.covered(path) {
				d.l.add(lineOf(mv.Key), path, ErrWrongType, "<< must merge mappings")
			}
			continue
		}
		out = append(out, &ast.MappingValueNode{BaseNode: mv.BaseNode, Start: mv.Start, CollectEntry: mv.CollectEntry, Key: mv.Key, Value: src, FootComment: mv.FootComment})
	}
	return out
}
