package config

import (
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Keys of the YAML format, in the order the docs list them.
var (
	topKeys      = []string{"defaults", "checks"}
	defaultsKeys = []string{"interval", "timeout", "jitter", "failure_threshold", "success_threshold"}
	checkKeys    = []string{"name", "type", "target", "interval", "timeout", "jitter", "failure_threshold", "success_threshold", "each_address", "max_addresses", "http", "tcp", "tls", "dns", "grpc"}
	httpKeys     = []string{"method", "headers", "body", "valid_status_codes", "body_matches", "body_not_matches", "header_matches", "follow_redirects", "max_redirects", "basic_auth"}
	basicKeys    = []string{"username", "password", "password_file"}
	matchKeys    = []string{"header", "regexp"}
	tcpKeys      = []string{"send", "expect", "tls"}
	tlsKeys      = []string{"insecure_skip_verify", "ca_file", "server_name", "min_days_left"}
	dnsKeys      = []string{"server", "record_type", "expected_answers"}
	grpcKeys     = []string{"service", "tls"}
)

// The YAML is parsed into goccy/go-yaml's syntax tree and mapped onto the
// types here by hand rather than with yaml.Unmarshal: the tree gives every
// key's line, so each error names its exact field path and line in our
// format, and all problems are collected instead of stopping at the first.

type yamlDecoder struct {
	l       *errList
	pos     map[string]int  // field path -> line of its key (or list item)
	given   map[string]bool // field paths set to a non-null value
	anchors map[string][]ast.Node
	res     secretResolver
}

// entry is one key of a mapping, merge keys already expanded.
type entry struct {
	key   string
	line  int
	value ast.Node // nil or *ast.NullNode means "not set"
}

// obj is a decoded mapping at a field path.
type obj struct {
	d    *yamlDecoder
	path string
	line int
	fs   map[string]entry
}

type defaults struct {
	interval, timeout time.Duration
	jitter            float64
	failure, success  int
}

func parseYAML(path string, data []byte, res secretResolver) (*File, error) {
	d := &yamlDecoder{l: newErrList(path), pos: map[string]int{}, given: map[string]bool{}, anchors: map[string][]ast.Node{}, res: res}
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
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			d.l.add(lineOf(doc.Body), "", ErrSyntax, "more than one YAML document")
			return nil, d.l.err()
		}
		body = doc.Body
	}
	if body == nil {
		d.l.add(0, "", ErrMissingField, `empty file (want a "checks" list)`)
		return nil, d.l.err()
	}
	d.collectAnchors(body, 0)

	top, ok := d.object(body, "", topKeys, `must be a mapping with a "checks" list`)
	if !ok {
		return nil, d.l.err()
	}
	def := d.defaults(top)
	f := &File{Path: path}
	list, ok := top.list("checks")
	if !ok && !d.l.covered("checks") {
		d.l.add(top.line, "checks", ErrMissingField, "required (use [] for none)")
	}
	names := map[string]int{}
	for i, n := range list {
		p := indexPath("checks", i)
		c, ok := d.check(n, p, def)
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
	if err := d.l.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// collectAnchors records every anchor under n. It walks the tree itself:
// goccy's ast.Walk (behind ast.FilterFile) panics on the nil nodes some
// inputs leave in the tree (found by FuzzParseYAML: "00\n---").
func (d *yamlDecoder) collectAnchors(n ast.Node, depth int) {
	if n == nil || depth > maxDepth {
		return
	}
	switch v := n.(type) {
	case *ast.AnchorNode:
		if v.Name != nil && v.Name.GetToken() != nil {
			name := v.Name.GetToken().Value
			d.anchors[name] = append(d.anchors[name], v)
		}
		d.collectAnchors(v.Value, depth+1)
	case *ast.TagNode:
		d.collectAnchors(v.Value, depth+1)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if mv != nil {
				d.collectAnchors(mv.Key, depth+1)
				d.collectAnchors(mv.Value, depth+1)
			}
		}
	case *ast.MappingValueNode:
		d.collectAnchors(v.Key, depth+1)
		d.collectAnchors(v.Value, depth+1)
	case *ast.MappingKeyNode:
		d.collectAnchors(v.Value, depth+1)
	case *ast.SequenceNode:
		for _, item := range v.Values {
			d.collectAnchors(item, depth+1)
		}
	}
}

// maxDepth bounds the anchor walk; the schema itself is at most six deep.
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

func (d *yamlDecoder) defaults(top *obj) defaults {
	def := defaults{
		interval: DefaultInterval,
		timeout:  DefaultTimeout,
		jitter:   DefaultJitter,
		failure:  DefaultFailureThreshold,
		success:  DefaultSuccessThreshold,
	}
	o, ok := top.sub("defaults", defaultsKeys)
	if !ok {
		return def
	}
	// An invalid default is reported here once, and the built-in value is
	// used instead so the error is not repeated for every check.
	if v, ok := o.duration("interval"); ok {
		if v < MinInterval {
			o.fail("interval", ErrInvalidValue, "must be at least %s", MinInterval)
		} else {
			def.interval = v
		}
	}
	if v, ok := o.duration("timeout"); ok {
		switch {
		case v <= 0:
			o.fail("timeout", ErrInvalidValue, "must be greater than 0")
		case v >= def.interval:
			o.fail("timeout", ErrInvalidValue, "must be less than interval (%s)", def.interval)
		default:
			def.timeout = v
		}
	}
	if v, ok := o.float("jitter"); ok {
		if v < 0 || v > MaxJitter {
			o.fail("jitter", ErrInvalidValue, "must be between 0 and %g", MaxJitter)
		} else {
			def.jitter = v
		}
	}
	for _, t := range []struct {
		key string
		dst *int
	}{{"failure_threshold", &def.failure}, {"success_threshold", &def.success}} {
		if v, ok := o.integer(t.key); ok {
			if v < 1 {
				o.fail(t.key, ErrInvalidValue, "must be at least 1")
			} else {
				*t.dst = v
			}
		}
	}
	return def
}

func (d *yamlDecoder) check(n ast.Node, path string, def defaults) (Check, bool) {
	o, ok := d.object(n, path, checkKeys, "must be a mapping")
	if !ok {
		return Check{}, false
	}
	var c Check
	c.Name, _ = o.str("name")
	if t, ok := o.str("type"); ok {
		c.Type = strings.ToLower(t)
	}
	c.Target, _ = o.str("target")

	c.Interval = def.interval
	if v, ok := o.duration("interval"); ok {
		c.Interval = v
	}
	if v, ok := o.duration("timeout"); ok {
		c.Timeout = v
	} else {
		c.Timeout = inheritedTimeout(def.timeout, c.Interval)
	}
	c.Jitter = def.jitter
	if v, ok := o.float("jitter"); ok {
		c.Jitter = v
	}
	c.FailureThreshold = def.failure
	if v, ok := o.integer("failure_threshold"); ok {
		c.FailureThreshold = v
	}
	c.SuccessThreshold = def.success
	if v, ok := o.integer("success_threshold"); ok {
		c.SuccessThreshold = v
	}
	c.EachAddress, _ = o.boolean("each_address")
	c.MaxAddresses, _ = o.integer("max_addresses")

	typ, known := lookupType(c.Type)
	// block returns the options block key if it is set and usable by this
	// check's type; with an unknown type the type error says it all.
	block := func(key string, keys []string, usable bool, msg string) (*obj, bool) {
		if !o.has(key) || !known {
			return nil, false
		}
		if !usable {
			o.fail(key, ErrInvalidValue, "%s", msg)
			return nil, false
		}
		return o.sub(key, keys)
	}
	section := func(key string) (*obj, bool) {
		t, _ := sectionType(key)
		return block(key, sectionKeys[key], t.name == c.Type, sectionUnusedMsg(t))
	}
	if b, ok := section("tcp"); ok {
		c.TCP = d.tcpOptions(b)
	}
	if b, ok := section("grpc"); ok {
		c.GRPC.Service, _ = b.str("service")
		c.GRPC.UseTLS, _ = b.boolean("tls")
	}
	if b, ok := section("dns"); ok {
		c.DNS = d.dnsOptions(b)
	}
	if b, ok := section("http"); ok {
		c.HTTP = d.httpOptions(b)
	}
	if b, ok := block("tls", tlsKeys, known && typ.usesTLS(&c), tlsUnusedMsg); ok {
		c.TLS = d.tlsOptions(b)
	}
	c.applyDefaults(func(field string) bool { return d.given[subPath(path, field)] })
	return c, true
}

// sectionKeys are the keys of each type's own options block.
var sectionKeys = map[string][]string{"http": httpKeys, "tcp": tcpKeys, "dns": dnsKeys, "grpc": grpcKeys}

// sectionType returns the type whose options block is key.
func sectionType(key string) (checkType, bool) {
	for _, t := range checkTypes {
		if t.section == key {
			return t, true
		}
	}
	return checkType{}, false
}

func (d *yamlDecoder) httpOptions(o *obj) HTTPOptions {
	var h HTTPOptions
	if m, ok := o.str("method"); ok {
		h.Method = strings.ToUpper(m)
	}
	if hs, ok := o.sub("headers", nil); ok {
		h.Headers = make(map[string]string, len(hs.fs))
		first := map[string]int{} // canonical name -> line
		for _, k := range hs.keys() {
			ck := http.CanonicalHeaderKey(k)
			if line, dup := first[ck]; dup {
				hs.fail(k, ErrDuplicate, "same header as line %d", line)
				continue
			}
			first[ck] = hs.fs[k].line
			if v, ok := hs.secret(k); ok {
				h.Headers[k] = v
			} else if !hs.covered(k) {
				h.Headers[k] = ""
			}
		}
	}
	h.Body, _ = o.secret("body")
	if items, ok := o.list("valid_status_codes"); ok {
		for i, n := range items {
			if v, ok := d.integer(n, indexPath(o.path+".valid_status_codes", i)); ok {
				h.ValidStatusCodes = append(h.ValidStatusCodes, v)
			}
		}
	}
	h.BodyMatches = o.regexps("body_matches")
	h.BodyNotMatches = o.regexps("body_not_matches")
	if items, ok := o.list("header_matches"); ok {
		for i, n := range items {
			m, ok := d.object(n, indexPath(o.path+".header_matches", i), matchKeys, "must be a mapping with header and regexp")
			if !ok {
				continue
			}
			var hm HeaderMatch
			hm.Header, _ = m.str("header")
			hm.Regexp, _ = m.regexp("regexp")
			h.HeaderMatches = append(h.HeaderMatches, hm)
		}
	}
	if v, ok := o.boolean("follow_redirects"); ok {
		h.NoFollowRedirects = !v
	}
	h.MaxRedirects, _ = o.integer("max_redirects")
	if b, ok := o.sub("basic_auth", basicKeys); ok {
		var a BasicAuth
		a.Username, _ = b.secret("username")
		pw, hasPW := b.secret("password")
		if b.has("password_file") {
			if hasPW || b.covered("password") {
				b.fail("password_file", ErrInvalidValue, "set either password or password_file, not both")
			} else if p, ok := b.str("password_file"); ok {
				data, err := readSmallFile(d.res.path(p))
				if err != nil {
					b.fail("password_file", ErrSecret, "%v", err)
				}
				pw = trimNewline(string(data))
			}
		}
		a.Password = pw
		h.BasicAuth = &a
	}
	return h
}

func (d *yamlDecoder) tcpOptions(o *obj) TCPOptions {
	var t TCPOptions
	t.Send, _ = o.secret("send")
	t.Expect, _ = o.regexp("expect")
	t.UseTLS, _ = o.boolean("tls")
	return t
}

func (d *yamlDecoder) dnsOptions(o *obj) DNSOptions {
	var opts DNSOptions
	opts.Server, _ = o.str("server")
	if rt, ok := o.str("record_type"); ok {
		opts.RecordType = strings.ToUpper(rt)
	}
	if items, ok := o.list("expected_answers"); ok {
		for i, n := range items {
			if s, ok := d.str(n, indexPath(o.path+".expected_answers", i)); ok {
				opts.ExpectedAnswers = append(opts.ExpectedAnswers, s)
			}
		}
	}
	return opts
}

func (d *yamlDecoder) tlsOptions(o *obj) TLSOptions {
	var t TLSOptions
	t.InsecureSkipVerify, _ = o.boolean("insecure_skip_verify")
	if p, ok := o.str("ca_file"); ok {
		t.CAFile = d.res.path(p)
		// Read it now: a missing or empty CA file is a config error, not a
		// failure of every run.
		data, err := readSmallFile(t.CAFile)
		switch {
		case err != nil:
			o.fail("ca_file", ErrInvalidValue, "%v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			o.fail("ca_file", ErrInvalidValue, "no PEM certificate in %q", t.CAFile)
		}
	}
	t.ServerName, _ = o.str("server_name")
	t.MinDaysLeft, _ = o.integer("min_days_left")
	return t
}

// lineFor finds the line of a field path, falling back to its closest
// enclosing path that has one (a missing field is reported where its
// mapping starts).
func (d *yamlDecoder) lineFor(path string) int {
	for path != "" {
		if line, ok := d.pos[path]; ok {
			return line
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
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

// resolve looks through anchors, tags and aliases to the node that holds
// the value. A YAML alias refers to the latest anchor of its name before it.
func (d *yamlDecoder) resolve(n ast.Node) (ast.Node, error) {
	for range 64 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil {
				return nil, errors.New("alias without a name")
			}
			name := v.Value.GetToken().Value
			var target ast.Node
			at := v.GetToken().Position.Offset
			for _, a := range d.anchors[name] {
				if a.GetToken().Position.Offset < at {
					target = a
				}
			}
			if target == nil {
				return nil, fmt.Errorf("unknown alias *%s", name)
			}
			n = target
		default:
			return n, nil
		}
	}
	return nil, errors.New("aliases nested too deeply")
}

func isNull(n ast.Node) bool {
	_, null := n.(*ast.NullNode)
	return n == nil || null
}

// value resolves n for the field at path; ok is false when it is null
// (unset) or broken (error recorded).
func (d *yamlDecoder) value(n ast.Node, path string) (ast.Node, bool) {
	line := lineOf(n)
	n, err := d.resolve(n)
	if err != nil {
		d.l.add(line, path, ErrSyntax, "%v", err)
		return nil, false
	}
	return n, !isNull(n)
}

// object decodes a mapping at path whose keys must be among known (nil:
// any key). Merge keys (<<: *anchor) are expanded; explicit keys win.
func (d *yamlDecoder) object(n ast.Node, path string, known []string, notMapping string) (*obj, bool) {
	line := lineOf(n)
	if path != "" {
		d.pos[path] = line
	}
	n, ok := d.value(n, path)
	if !ok {
		if !d.l.covered(path) {
			d.l.add(line, path, ErrWrongType, "%s", notMapping)
		}
		return nil, false
	}
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.l.add(line, path, ErrWrongType, "%s", notMapping)
		return nil, false
	}
	o := &obj{d: d, path: path, line: line, fs: map[string]entry{}}
	var merged []entry
	d.collect(m, path, o.fs, &merged, map[*ast.MappingNode]bool{}, true)
	for _, e := range merged {
		if _, ok := o.fs[e.key]; !ok {
			o.fs[e.key] = e
		}
	}
	for k, e := range o.fs {
		field := joinPath(path, k)
		d.pos[field] = e.line
		d.given[field] = !isNull(e.value)
		if path == "" && strings.HasPrefix(k, "x-") {
			// Top-level x-* keys are ignored, as in docker-compose files:
			// a place to define YAML anchors for checks to merge (<<: *x).
			delete(o.fs, k)
			continue
		}
		if known != nil && !slices.Contains(known, k) {
			d.l.add(e.line, field, ErrUnknownField, "unknown field%s", suggest(k, known))
			delete(o.fs, k)
		}
	}
	return o, true
}

// collect gathers m's entries into explicit (when top) or merged.
func (d *yamlDecoder) collect(m *ast.MappingNode, path string, explicit map[string]entry, merged *[]entry, seen map[*ast.MappingNode]bool, top bool) {
	if seen[m] {
		return
	}
	seen[m] = true
	for _, mv := range m.Values {
		if mv == nil {
			continue
		}
		line := lineOf(mv.Key)
		if mv.Key != nil && mv.Key.IsMergeKey() {
			d.merge(mv.Value, path, line, merged, seen)
			continue
		}
		key, ok := d.key(mv.Key)
		if !ok {
			d.l.add(line, path, ErrWrongType, "keys must be strings")
			continue
		}
		e := entry{key: key, line: line, value: mv.Value}
		if !top {
			*merged = append(*merged, e)
			continue
		}
		if first, dup := explicit[key]; dup {
			d.l.add(line, joinPath(path, key), ErrDuplicate, "duplicate key (first at line %d)", first.line)
			continue
		}
		explicit[key] = e
	}
}

func (d *yamlDecoder) merge(n ast.Node, path string, line int, merged *[]entry, seen map[*ast.MappingNode]bool) {
	n, ok := d.value(n, path)
	if !ok {
		return
	}
	switch v := n.(type) {
	case *ast.MappingNode:
		d.collect(v, path, nil, merged, seen, false)
	case *ast.SequenceNode:
		for _, item := range v.Values {
			if r, ok := d.value(item, path); ok {
				if m, ok := r.(*ast.MappingNode); ok {
					d.collect(m, path, nil, merged, seen, false)
					continue
				}
			}
			d.l.add(line, path, ErrWrongType, "<< must merge mappings")
		}
	default:
		d.l.add(line, path, ErrWrongType, "<< must merge mappings")
	}
}

func (d *yamlDecoder) key(k ast.MapKeyNode) (string, bool) {
	if k == nil {
		return "", false
	}
	var n ast.Node = k
	if mk, ok := k.(*ast.MappingKeyNode); ok {
		n = mk.Value
	}
	n, err := d.resolve(n)
	if err != nil || isNull(n) {
		return "", false
	}
	return scalarText(n)
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

func (d *yamlDecoder) str(n ast.Node, path string) (string, bool) {
	line := lineOf(n)
	n, ok := d.value(n, path)
	if !ok {
		return "", false
	}
	s, ok := scalarText(n)
	if !ok {
		d.l.add(line, path, ErrWrongType, "must be a string")
	}
	return s, ok
}

func (d *yamlDecoder) integer(n ast.Node, path string) (int, bool) {
	line := lineOf(n)
	if path != "" {
		if _, ok := d.pos[path]; !ok {
			d.pos[path] = line
		}
	}
	n, ok := d.value(n, path)
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
	d.l.add(line, path, ErrWrongType, "must be a whole number")
	return 0, false
}

// entry accessors on obj: each returns ok false when the key is absent,
// null, or broken (the error is already recorded).

func (o *obj) has(key string) bool {
	e, ok := o.fs[key]
	return ok && !isNull(e.value)
}

// keys lists the mapping's keys in file order.
func (o *obj) keys() []string {
	ks := slices.Collect(maps.Keys(o.fs))
	slices.SortFunc(ks, func(a, b string) int {
		return cmp.Or(cmp.Compare(o.fs[a].line, o.fs[b].line), strings.Compare(a, b))
	})
	return ks
}

func (o *obj) field(key string) string { return joinPath(o.path, key) }

func (o *obj) fail(key string, kind error, format string, args ...any) {
	o.d.l.add(o.fs[key].line, o.field(key), kind, format, args...)
}

func (o *obj) covered(key string) bool { return o.d.l.covered(o.field(key)) }

func (o *obj) str(key string) (string, bool) {
	e, ok := o.fs[key]
	if !ok {
		return "", false
	}
	return o.d.str(e.value, o.field(key))
}

func (o *obj) secret(key string) (string, bool) {
	s, ok := o.str(key)
	if !ok {
		return "", false
	}
	v, err := o.d.res.resolve(s)
	if err != nil {
		o.fail(key, ErrSecret, "%v", err)
		return "", false
	}
	return v, true
}

func (o *obj) boolean(key string) (bool, bool) {
	e, ok := o.fs[key]
	if !ok {
		return false, false
	}
	n, ok := o.d.value(e.value, o.field(key))
	if !ok {
		return false, false
	}
	if b, ok := n.(*ast.BoolNode); ok {
		return b.Value, true
	}
	o.fail(key, ErrWrongType, "must be true or false")
	return false, false
}

func (o *obj) integer(key string) (int, bool) {
	e, ok := o.fs[key]
	if !ok {
		return 0, false
	}
	return o.d.integer(e.value, o.field(key))
}

func (o *obj) float(key string) (float64, bool) {
	e, ok := o.fs[key]
	if !ok {
		return 0, false
	}
	n, ok := o.d.value(e.value, o.field(key))
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
	o.fail(key, ErrWrongType, "must be a number")
	return 0, false
}

func (o *obj) duration(key string) (time.Duration, bool) {
	e, ok := o.fs[key]
	if !ok {
		return 0, false
	}
	n, ok := o.d.value(e.value, o.field(key))
	if !ok {
		return 0, false
	}
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		o.fail(key, ErrWrongType, "must be a duration with a unit, such as 30s (got %s)", n.GetToken().Value)
		return 0, false
	}
	s, ok := scalarText(n)
	if !ok {
		o.fail(key, ErrWrongType, "must be a duration such as 30s or 1m30s")
		return 0, false
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		o.fail(key, ErrInvalidValue, "must be a duration such as 30s or 1m30s (got %q)", s)
		return 0, false
	}
	return v, true
}

func (o *obj) regexp(key string) (*regexp.Regexp, bool) {
	s, ok := o.str(key)
	if !ok {
		return nil, false
	}
	re, err := compileRegexp(s)
	if err != nil {
		o.fail(key, ErrInvalidValue, "%v", err)
		return nil, false
	}
	return re, true
}

func (o *obj) regexps(key string) []*regexp.Regexp {
	items, ok := o.list(key)
	if !ok {
		return nil
	}
	var res []*regexp.Regexp
	for i, n := range items {
		p := indexPath(o.field(key), i)
		s, ok := o.d.str(n, p)
		if !ok {
			continue
		}
		re, err := compileRegexp(s)
		if err != nil {
			o.d.l.add(lineOf(n), p, ErrInvalidValue, "%v", err)
			continue
		}
		res = append(res, re)
	}
	return res
}

func compileRegexp(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(s)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// list returns the items of a sequence; ok is false when absent or null.
func (o *obj) list(key string) ([]ast.Node, bool) {
	e, ok := o.fs[key]
	if !ok {
		return nil, false
	}
	path := o.field(key)
	n, ok := o.d.value(e.value, path)
	if !ok {
		return nil, false
	}
	s, ok := n.(*ast.SequenceNode)
	if !ok {
		o.fail(key, ErrWrongType, "must be a list")
		return nil, false
	}
	for i, item := range s.Values {
		o.d.pos[indexPath(path, i)] = lineOf(item)
	}
	return s.Values, true
}

// sub decodes a nested mapping; ok is false when absent, null or broken.
func (o *obj) sub(key string, known []string) (*obj, bool) {
	e, ok := o.fs[key]
	if !ok || isNull(e.value) {
		return nil, false
	}
	path := o.field(key)
	n, ok := o.d.value(e.value, path)
	if !ok {
		return nil, false
	}
	if _, ok := n.(*ast.MappingNode); !ok {
		o.fail(key, ErrWrongType, "must be a mapping")
		return nil, false
	}
	sub, ok := o.d.object(n, path, known, "must be a mapping")
	if ok {
		// The mapping's own first line may be below the key; errors about
		// the block as a whole belong on the key's line.
		sub.line = e.line
		o.d.pos[path] = e.line
	}
	return sub, ok
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
