package checks

import (
	"crypto/sha256"
	"encoding/json"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// State is a check's health after thresholds are applied.
type State int

// States. A check starts Unknown; its first success makes it Up without a
// notice (starting is not news) while FailureThreshold consecutive failures
// make it Down with an alert, so a check failing from the start alerts.
const (
	StateUnknown State = iota
	StateUp
	StateDown
)

// String returns "unknown", "up" or "down".
func (s State) String() string {
	switch s {
	case StateUp:
		return "up"
	case StateDown:
		return "down"
	default:
		return "unknown"
	}
}

// MarshalText makes /status show states as words.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

type transition int

const (
	noTransition transition = iota
	wentDown
	wentUp
)

// Attribute keys of our own; the rest come from semconv.
const (
	attrCheckName = attribute.Key("check.name")
	attrCheckType = attribute.Key("check.type")
	attrPhase     = attribute.Key("phase")
	attrOutcome   = attribute.Key("outcome")
)

// maxCachedSets bounds each per-series cache of failure attribute sets;
// error types are a fixed list, so it is a guard against misbehaving probers.
const maxCachedSets = 32

// check is one configured check and its scheduling state.
type check struct {
	cfg         *config.Check
	fingerprint [sha256.Size]byte
	probe       ProbeFunc
	display     string // target with secrets redacted
	spanName    string // "probe <name>"
	httpMethod  string // http checks: the request method, for semconv attributes
	host        string // server.address: the name from the target, never a resolved IP
	port        int

	// Scheduling; guarded by Runner.mu.
	nominal time.Time // grid point the next run is jittered around
	due     time.Time
	index   int // position in the heap; -1 when not scheduled

	running atomic.Bool // a run is in flight; a due run now is skipped
	retired atomic.Bool // removed or replaced by Apply; its alerts are dropped

	main *series // the check itself; for each_address checks, the resolution

	mu    sync.Mutex
	addrs map[string]*series // each_address: one series per resolved address
}

func newCheck(cfg *config.Check, probe ProbeFunc) *check {
	c := &check{cfg: cfg, probe: probe, index: -1, display: cfg.DisplayTarget(), spanName: "probe " + cfg.Name}
	c.fingerprint = fingerprint(cfg)
	c.host, c.port = serverOf(cfg)
	if cfg.Type == config.TypeHTTP {
		c.httpMethod = cfg.HTTP.Method
		if c.httpMethod == "" {
			c.httpMethod = "GET"
		}
	}
	c.main = newSeries(c, "")
	return c
}

// fingerprint identifies a check's definition, so Apply can keep the state
// of unchanged checks. JSON covers every field, including ones added later,
// and compiled regexps marshal as their source; hashing keeps header secrets
// from being held twice.
func fingerprint(cfg *config.Check) [sha256.Size]byte {
	b, err := json.Marshal(cfg)
	if err != nil {
		// Unreachable for validated configs; a fresh nonce means "changed".
		b = strconv.AppendInt(nil, time.Now().UnixNano(), 10)
	}
	return sha256.Sum256(b)
}

// serverOf derives server.address and server.port from the target.
func serverOf(cfg *config.Check) (string, int) {
	switch cfg.Type {
	case config.TypeHTTP:
		u, err := url.Parse(cfg.Target)
		if err != nil {
			return "", 0
		}
		p := u.Port()
		if p == "" {
			p = "80"
			if strings.EqualFold(u.Scheme, "https") {
				p = "443"
			}
		}
		n, _ := strconv.Atoi(p)
		return u.Hostname(), n
	case config.TypeDNS:
		// The server we talk to is the resolver, not the name we ask about.
		if cfg.DNS.Server == "" {
			return "", 0
		}
		return splitHostPort(cfg.DNS.Server)
	default:
		return splitHostPort(cfg.Target)
	}
}

func splitHostPort(hp string) (string, int) {
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		return hp, 0
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// redact removes the target's secrets from text a prober wrote (a defence in
// depth: probers already use the display form).
func (c *check) redact(s string) string {
	if c.display == c.cfg.Target || s == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.Target, c.display)
}

// allSeries returns the check's series: the main one, then addresses in order.
func (c *check) allSeries() []*series {
	if !c.cfg.EachAddress {
		return []*series{c.main}
	}
	c.mu.Lock()
	out := make([]*series, 0, 1+len(c.addrs))
	for _, s := range c.addrs {
		out = append(out, s)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b *series) int { return strings.Compare(a.address, b.address) })
	return append([]*series{c.main}, out...)
}

// addressSeries returns the series for each address, creating new ones and
// forgetting addresses that are no longer resolved.
func (c *check) addressSeries(addrs []string) []*series {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]*series, len(addrs))
	out := make([]*series, len(addrs))
	for i, a := range addrs {
		s, ok := c.addrs[a]
		if !ok {
			s = newSeries(c, a)
		}
		next[a] = s
		out[i] = s
	}
	c.addrs = next
	return out
}

// series is one stream of runs with its own state and metric series: a
// check, or one address of an each_address check.
type series struct {
	chk     *check
	address string // "ip:port" for each_address series, else ""

	base    attribute.Set
	baseOpt metric.MeasurementOption
	runsOK  metric.MeasurementOption

	mu       sync.Mutex
	runsSkip metric.MeasurementOption // made on the first skip: most checks never skip
	failOpts []cachedFail
	st       seriesState
}

type cachedFail struct {
	errType string
	attrs   metric.MeasurementOption // base + error.type
	runs    metric.MeasurementOption // base + error.type + outcome=failure
}

// checkKVs are the attributes of every per-check metric series.
func (c *check) checkKVs() []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 5)
	kvs = append(kvs, attrCheckName.String(c.cfg.Name), attrCheckType.String(c.cfg.Type))
	if c.host != "" {
		kvs = append(kvs, semconv.ServerAddressKey.String(c.host))
	}
	if c.port != 0 {
		kvs = append(kvs, semconv.ServerPortKey.Int(c.port))
	}
	return kvs
}

func newSeries(c *check, address string) *series {
	kvs := c.checkKVs()
	if address != "" {
		// Only each_address series carry the address: it is what tells one
		// peer's series from another's, bounded by max_addresses.
		kvs = append(kvs, semconv.NetworkPeerAddressKey.String(hostOnly(address)))
	}
	s := &series{chk: c, address: address, base: attribute.NewSet(kvs...)}
	s.baseOpt = metric.WithAttributeSet(s.base)
	s.runsOK = metric.WithAttributeSet(attribute.NewSet(s.kvs(attrOutcome.String("success"))...))
	return s
}

func (s *series) kvs(extra ...attribute.KeyValue) []attribute.KeyValue {
	return append(s.base.ToSlice(), extra...)
}

// skipOpt returns the probe.runs{outcome=skipped} option; callers hold s.mu.
func (s *series) skipOpt() metric.MeasurementOption {
	if s.runsSkip == nil {
		s.runsSkip = metric.WithAttributeSet(attribute.NewSet(s.kvs(attrOutcome.String("skipped"))...))
	}
	return s.runsSkip
}

// failOpt returns the attribute options for a failure; callers hold s.mu.
func (s *series) failOpt(errType string) cachedFail {
	for _, c := range s.failOpts {
		if c.errType == errType {
			return c
		}
	}
	et := semconv.ErrorTypeKey.String(errType)
	f := cachedFail{
		errType: errType,
		attrs:   metric.WithAttributeSet(attribute.NewSet(s.kvs(et)...)),
		runs:    metric.WithAttributeSet(attribute.NewSet(s.kvs(et, attrOutcome.String("failure"))...)),
	}
	if len(s.failOpts) < maxCachedSets {
		s.failOpts = append(s.failOpts, f)
	}
	return f
}

// sharedSets interns the attribute sets of the metrics that are not per
// check, so thousands of checks share one copy of each.
//
// probe.phase.duration is keyed by check type and phase only: per check it
// would be 4–6 histogram series each (about 1 KB apiece in the SDK, ~85
// Prometheus series), which at 10,000 checks alone exceeds the memory
// budget, and in a mesh where every sidecar checks every peer it multiplies
// into millions of series. Per-run phases of each check are on its spans.
// http.client.request.duration keeps to its semantic-convention attributes,
// which identify the server, not the check.
type sharedSets struct {
	mu    sync.Mutex
	phase map[phaseKey]metric.MeasurementOption
	http  map[httpKey]metric.MeasurementOption
}

type phaseKey struct{ checkType, phase string }

type httpKey struct {
	method, host string
	port, code   int
	errType      string
}

// maxSharedSets bounds each intern table; beyond it sets are built per run.
const maxSharedSets = 4096

func (sh *sharedSets) phaseOpt(checkType, phase string) metric.MeasurementOption {
	k := phaseKey{checkType, phase}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if o, ok := sh.phase[k]; ok {
		return o
	}
	o := metric.WithAttributeSet(attribute.NewSet(attrCheckType.String(checkType), attrPhase.String(phase)))
	if sh.phase == nil {
		sh.phase = map[phaseKey]metric.MeasurementOption{}
	}
	if len(sh.phase) < maxSharedSets {
		sh.phase[k] = o
	}
	return o
}

func (sh *sharedSets) httpOpt(k httpKey) metric.MeasurementOption {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if o, ok := sh.http[k]; ok {
		return o
	}
	kvs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method)}
	if k.host != "" {
		kvs = append(kvs, semconv.ServerAddressKey.String(k.host), semconv.ServerPortKey.Int(k.port))
	}
	if k.code != 0 {
		kvs = append(kvs, semconv.HTTPResponseStatusCodeKey.Int(k.code))
	}
	if k.errType != "" {
		kvs = append(kvs, semconv.ErrorTypeKey.String(k.errType))
	}
	o := metric.WithAttributeSet(attribute.NewSet(kvs...))
	if sh.http == nil {
		sh.http = map[httpKey]metric.MeasurementOption{}
	}
	if len(sh.http) < maxSharedSets {
		sh.http[k] = o
	}
	return o
}

// seriesState is what /status shows and what thresholds act on.
type seriesState struct {
	State       State
	Since       time.Time // when State last changed
	ConsecFail  int
	ConsecOK    int
	Runs        uint64
	Failures    uint64
	Skipped     uint64
	HasRun      bool
	LastRun     time.Time
	LastDur     time.Duration
	LastOK      bool
	LastMessage string
	LastErr     string
	LastErrType string
	LastErrAt   time.Time
	StatusCode  int
	CertExpiry  time.Time
}

// apply folds one run's outcome into the state and reports a transition.
// Thresholds below 1 count as 1.
func (st *seriesState) apply(ok bool, failThreshold, okThreshold int, now time.Time) transition {
	failThreshold = max(failThreshold, 1)
	okThreshold = max(okThreshold, 1)
	st.Runs++
	if ok {
		st.ConsecOK++
		st.ConsecFail = 0
		switch {
		case st.State == StateUnknown:
			st.State, st.Since = StateUp, now
		case st.State == StateDown && st.ConsecOK >= okThreshold:
			st.State, st.Since = StateUp, now
			return wentUp
		}
		return noTransition
	}
	st.Failures++
	st.ConsecFail++
	st.ConsecOK = 0
	if st.State != StateDown && st.ConsecFail >= failThreshold {
		st.State, st.Since = StateDown, now
		return wentDown
	}
	return noTransition
}

// observe reports the series' gauges from the last run.
func (s *series) observe(o metric.Observer, in *instruments) {
	s.mu.Lock()
	st := s.st
	s.mu.Unlock()
	if !st.HasRun {
		return
	}
	o.ObserveInt64(in.success, b2i(st.LastOK), s.baseOpt)
	switch st.State {
	case StateUp:
		o.ObserveInt64(in.up, 1, s.baseOpt)
	case StateDown:
		o.ObserveInt64(in.up, 0, s.baseOpt)
	}
	if st.StatusCode != 0 {
		o.ObserveInt64(in.statusCode, int64(st.StatusCode), s.baseOpt)
	}
	if !st.CertExpiry.IsZero() {
		o.ObserveInt64(in.certExpiry, st.CertExpiry.Unix(), s.baseOpt)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
