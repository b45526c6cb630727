package checks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	otellog "go.opentelemetry.io/otel/log"
	lognoop "go.opentelemetry.io/otel/log/noop"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog"
)

// DefaultMaxConcurrent is how many probes may run at once when Settings.MaxConcurrent is zero.
const DefaultMaxConcurrent = 64

// Errors returned by New, Apply and Run.
var (
	ErrInvalidSettings = errors.New("invalid checks settings")
	ErrUnknownType     = errors.New("unknown check type")
	ErrAlreadyRunning  = errors.New("runner already running")
)

// Settings configures a Runner. Nil providers mean no telemetry of that kind.
type Settings struct {
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	LoggerProvider otellog.LoggerProvider
	// Propagator injects each run's trace context into probes; nil means W3C trace context.
	Propagator propagation.TextMapPropagator
	// Logger gets every run's line (successes at debug, failures at info) and transitions; nil discards.
	Logger *slog.Logger
	// MaxConcurrent bounds probes in flight across all checks; 0 means DefaultMaxConcurrent.
	MaxConcurrent int
	// Syslog says where transition alerts go.
	Syslog SyslogConfig
	// MeshIdentity is this sidecar in mesh checks: the address it finds
	// itself by in the members' DNS answer, and the name its probes carry.
	MeshIdentity mesh.Identity
	// PeersResolver, when set, is the DNS server ("host:port") that
	// resolves the members of each_address and mesh checks instead of the
	// system resolver.
	PeersResolver string
	// StatusHistory is how many runs each series keeps for /status; 0 means DefaultStatusHistory.
	StatusHistory int
}

// Validate reports settings New cannot use.
func (s *Settings) Validate() error {
	if s.MaxConcurrent < 0 {
		return fmt.Errorf("%w: max concurrent checks %d must not be negative", ErrInvalidSettings, s.MaxConcurrent)
	}
	if s.StatusHistory < 0 || s.StatusHistory > MaxStatusHistory {
		return fmt.Errorf("%w: status history %d must be between 0 (the default, %d) and %d", ErrInvalidSettings, s.StatusHistory, DefaultStatusHistory, MaxStatusHistory)
	}
	if err := s.Syslog.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidSettings, err)
	}
	if s.PeersResolver != "" {
		if _, err := netip.ParseAddrPort(s.PeersResolver); err != nil {
			return fmt.Errorf("%w: peers resolver %q: want ip:port: %w", ErrInvalidSettings, s.PeersResolver, err)
		}
	}
	return nil
}

// Runner schedules and runs checks and keeps their state.
type Runner struct {
	log    *slog.Logger
	tracer trace.Tracer
	events otellog.Logger // transition records (heartbeat.check.down, heartbeat.check.up)
	prop   propagation.TextMapPropagator
	inst   *instruments
	shared sharedSets
	alerts *syslog.Client // nil when syslog is off
	quiet  bool           // RunOnce: no alerts, only results
	self   mesh.Identity
	from   string // self as mesh probes name it
	keep   int    // runs of history per series

	sem       chan struct{}
	exclusive chan struct{} // one slot for the checks whose runs must not overlap
	inflight  sync.WaitGroup
	started   atomic.Bool

	// Replaceable in tests: the prober lookup and the resolver.
	probers  func(checkType string) (probe.ProbeFunc, bool)
	resolver *net.Resolver
	// onStart, when set, sees every run's scheduled and actual start.
	onStart func(c *check, due, started time.Time)

	list atomic.Pointer[[]*check] // checks in file order, for /status and gauges

	mu     sync.Mutex // guards everything below
	checks map[string]*check
	heap   schedHeap
	rnd    *rand.Rand
	wake   chan struct{}

	reloadMu      sync.Mutex
	lastReloadErr string
}

// New returns a Runner with no checks; give it some with Apply and start it with Run.
func New(s Settings) (*Runner, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.MeterProvider == nil {
		s.MeterProvider = metricnoop.NewMeterProvider()
	}
	if s.TracerProvider == nil {
		s.TracerProvider = tracenoop.NewTracerProvider()
	}
	if s.LoggerProvider == nil {
		s.LoggerProvider = lognoop.NewLoggerProvider()
	}
	if s.Propagator == nil {
		s.Propagator = propagation.TraceContext{}
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = DefaultMaxConcurrent
	}
	if s.StatusHistory == 0 {
		s.StatusHistory = DefaultStatusHistory
	}
	meter := s.MeterProvider.Meter(scopeName, metric.WithSchemaURL(semconv.SchemaURL))
	inst, err := newInstruments(meter)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		log:       s.Logger,
		tracer:    s.TracerProvider.Tracer(scopeName, trace.WithSchemaURL(semconv.SchemaURL)),
		events:    s.LoggerProvider.Logger(scopeName, otellog.WithSchemaURL(semconv.SchemaURL)),
		prop:      s.Propagator,
		inst:      inst,
		keep:      s.StatusHistory,
		sem:       make(chan struct{}, s.MaxConcurrent),
		exclusive: make(chan struct{}, 1),
		probers:   probe.Lookup,
		resolver:  peersResolver(s.PeersResolver),
		self:      s.MeshIdentity,
		from:      cmp.Or(s.MeshIdentity.String(), "unknown"),
		checks:    map[string]*check{},
		rnd:       rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		wake:      make(chan struct{}, 1),
	}
	r.list.Store(&[]*check{})
	if r.alerts, err = syslog.New(s.Syslog, s.Logger, func(ctx context.Context) {
		inst.alertsDropped.Add(ctx, 1)
	}); err != nil {
		return nil, err
	}
	// The callback stays registered for the Runner's life, so the final
	// export at shutdown (after Run returns) still carries the gauges.
	if _, err = r.registerGauges(meter); err != nil {
		return nil, fmt.Errorf("checks: registering gauge callback: %w", err)
	}
	return r, nil
}

// Apply replaces the running checks with f's, which must be defaulted and validated.
func (r *Runner) Apply(f *config.File) error {
	// Checks whose definition is unchanged keep their state and schedule;
	// changed ones restart from unknown. On error (a check type without a
	// prober) nothing changes.
	var cfgs []config.Check
	if f != nil {
		cfgs = f.Checks
	}
	// Before the lock and before any run: one-time loads such as the system
	// roots must not count in a first run's duration.
	probe.Preload(cfgs)
	r.mu.Lock()
	defer r.mu.Unlock()
	next := make(map[string]*check, len(cfgs))
	order := make([]*check, 0, len(cfgs))
	for i := range cfgs {
		cfg := cfgs[i] // a copy: the caller may reuse f
		if _, dup := next[cfg.Name]; dup {
			// config validation rejects this; a second entry would run unnamed for ever.
			return fmt.Errorf("checks: %w: two checks named %q", ErrInvalidSettings, cfg.Name)
		}
		if old, ok := r.checks[cfg.Name]; ok && old.fingerprint == fingerprint(&cfg) {
			next[cfg.Name] = old
			order = append(order, old)
			continue
		}
		p, ok := r.probers(cfg.Type)
		if !ok {
			return fmt.Errorf("checks: check %q: %w %q", cfg.Name, ErrUnknownType, cfg.Type)
		}
		c := newCheck(&cfg, p)
		next[cfg.Name] = c
		order = append(order, c)
	}
	now := time.Now()
	for name, old := range r.checks {
		if next[name] != old {
			old.retired.Store(true)
			r.unschedule(old)
		}
	}
	for _, c := range order {
		if c.index < 0 && !c.retired.Load() {
			r.schedule(c, now)
		}
	}
	r.checks = next
	r.list.Store(&order)
	r.wakeUp()

	r.reloadMu.Lock()
	r.lastReloadErr = ""
	r.reloadMu.Unlock()
	return nil
}

// ReportReloadError counts and logs a checks file that could not be loaded; it fits config.Watcher's Observe hook.
func (r *Runner) ReportReloadError(err error) {
	// The previous checks keep running. Repeats of the same error are
	// counted but logged once, since file watchers fire several events per
	// change; nil (a reload that worked) re-arms the log.
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	if err == nil {
		r.lastReloadErr = ""
		return
	}
	ctx := context.Background()
	r.inst.reloadFails.Add(ctx, 1)
	if r.lastReloadErr != err.Error() {
		r.lastReloadErr = err.Error()
		r.log.ErrorContext(ctx, "checks file reload failed; keeping the previous checks", "err", err)
	}
}

// Run schedules the checks until ctx is done, waits for runs in flight and flushes alerts; call it once.
func (r *Runner) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	var alertsDone chan struct{}
	alertCtx, stopAlerts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAlerts()
	if r.alerts != nil {
		alertsDone = make(chan struct{})
		go func() {
			defer close(alertsDone)
			r.alerts.Run(alertCtx)
		}()
	}
	r.loop(ctx)
	r.inflight.Wait()
	stopAlerts()
	if alertsDone != nil {
		<-alertsDone
	}
	return nil
}

// snapshot returns the current checks in file order.
func (r *Runner) snapshot() []*check { return *r.list.Load() }

func (r *Runner) acquire(ctx context.Context) bool { return take(ctx, r.sem) }

func (r *Runner) release() { <-r.sem }

// acquireAddressRun takes the slots one address's run of c needs: the
// exclusive slot first for throughput checks (one transfer at a time in the
// sidecar), then a concurrency slot; release frees both.
func (r *Runner) acquireAddressRun(ctx context.Context, c *check) (release func(), ok bool) {
	if c.cfg.Exclusive() {
		if !r.acquireExclusive(ctx) {
			return nil, false
		}
	}
	if !r.acquire(ctx) {
		if c.cfg.Exclusive() {
			r.releaseExclusive()
		}
		return nil, false
	}
	return func() {
		r.release()
		if c.cfg.Exclusive() {
			r.releaseExclusive()
		}
	}, true
}

// execute performs one run of c, which came due at due.
func (r *Runner) execute(ctx context.Context, c *check, due time.Time) {
	if c.cfg.Exclusive() && !c.cfg.EachAddress && !c.isMesh() { // those take it per address
		if !r.acquireExclusive(ctx) {
			return
		}
		defer r.releaseExclusive()
	}
	if !r.acquire(ctx) {
		return
	}
	started := time.Now()
	r.inst.lateness.Record(ctx, started.Sub(due).Seconds())
	if r.onStart != nil {
		r.onStart(c, due, started)
	}
	switch {
	case c.isMesh():
		r.runMesh(ctx, c)
	case c.cfg.EachAddress:
		r.runEachAddress(ctx, c)
	default:
		defer r.release()
		r.runSeries(ctx, c.main, probe.Target{Check: c.cfg, Resolver: r.resolver})
	}
}

// runSeries probes t once under a run span, which also gets extra, and
// records the result on s.
func (r *Runner) runSeries(ctx context.Context, s *series, t probe.Target, extra ...attribute.KeyValue) probe.Result {
	c := s.chk
	ctx, span := r.tracer.Start(ctx, c.spanName, trace.WithSpanKind(trace.SpanKindClient))
	// Attributes are built only for sampled runs: most runs are not, and
	// at a thousand runs a second the garbage would add up.
	if span.IsRecording() {
		span.SetAttributes(c.spanAttrs()...)
		if s.address.IsValid() {
			span.SetAttributes(semconv.NetworkPeerAddressKey.String(s.address.Addr().String()))
		}
		span.SetAttributes(extra...)
	}
	t.Propagator = r.prop
	pctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	res := probe.Run(pctx, c.probe, t)
	cancel()
	if !res.Peer.IsValid() {
		res.Peer = t.Address // not connected: still name the address it tried
	}
	if ctx.Err() != nil {
		// Shutdown cut the run short: that says nothing about the target,
		// so it is neither recorded nor alerted on.
		span.End()
		return res
	}
	r.endSpan(ctx, span, res, res.Start.Add(res.Duration))
	r.record(ctx, s, res)
	return res
}

// endSpan adds what the run found to its span, one child span per phase
// (with the phase's own timestamps), and ends it at end.
func (r *Runner) endSpan(ctx context.Context, span trace.Span, res probe.Result, end time.Time) {
	if span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 6)
		if res.Peer.IsValid() {
			attrs = append(attrs, semconv.NetworkPeerAddressKey.String(res.Peer.Addr().String()))
			// ICMP has no ports.
			if res.Peer.Port() != 0 {
				attrs = append(attrs, semconv.NetworkPeerPortKey.Int(int(res.Peer.Port())))
			}
		}
		if res.StatusCode != 0 {
			attrs = append(attrs, semconv.HTTPResponseStatusCodeKey.Int(res.StatusCode))
		}
		if !res.CertExpiry.IsZero() {
			attrs = append(attrs, semconv.TLSServerNotAfterKey.String(res.CertExpiry.UTC().Format(time.RFC3339)))
		}
		if res.HasServerTiming {
			attrs = append(attrs, attribute.Float64("heartbeat.server_timing", res.ServerTiming.Seconds()))
		}
		attrs = append(attrs, transferAttrs(res)...)
		if !res.Success {
			attrs = append(attrs, semconv.ErrorTypeKey.String(res.ErrorType))
			span.SetStatus(codes.Error, res.Reason)
		}
		attrs = append(attrs, networkAttrs(res)...)
		span.SetAttributes(attrs...)
		r.phaseSpans(ctx, res.Phases)
	}
	span.End(trace.WithTimestamp(end))
}

// phaseSpans records one child span of ctx's span per phase, with the
// phase's own timestamps.
func (r *Runner) phaseSpans(ctx context.Context, phases []probe.PhaseTiming) {
	for _, p := range phases {
		_, ps := r.tracer.Start(ctx, p.Name, trace.WithTimestamp(p.Start))
		ps.End(trace.WithTimestamp(p.End))
	}
}

// record turns one result into metrics, state, logs and, on a transition, an alert.
func (r *Runner) record(ctx context.Context, s *series, res probe.Result) {
	c := s.chk
	in := r.inst
	secs := res.Duration.Seconds()

	// Attribute options are looked up under s.mu, but recorded outside it so
	// that no SDK lock is ever taken while holding a lock the gauge callback needs.
	s.mu.Lock()
	var runsOpt, durOpt metric.MeasurementOption
	if res.Success {
		runsOpt, durOpt = s.runsOK, s.baseOpt
	} else {
		f := s.failOpt(res.ErrorType)
		runsOpt, durOpt = f.runs, f.attrs
	}
	prev := s.st
	now := time.Now()
	tr := s.st.apply(res.Success, c.cfg.FailureThreshold, c.cfg.SuccessThreshold, now)
	s.st.LastRun = res.Start
	s.st.LastDuration = Seconds(res.Duration)
	s.st.LastSuccess = res.Success
	s.st.StatusCode = res.StatusCode
	s.st.CertExpiry = res.CertExpiry
	if s.role == mesh.RoleSweep {
		s.st.Address = res.Peer // the sweep series has no peer of its own: logs name this one
	}
	s.st.ProtocolVersion = res.ProtocolVersion
	s.st.PathMTU, s.st.Loss = 0, nil
	if res.PathMTU != nil {
		s.st.PathMTU = res.PathMTU.MTU
	}
	if res.Echo != nil && res.Echo.Sent > 0 {
		loss := res.Echo.Loss()
		s.st.Loss = &loss
	}
	s.st.setThroughput(res)
	if res.Success {
		s.st.LastResult = c.redact(res.Message)
	} else {
		s.st.LastResult = ""
		s.st.LastError = c.redact(res.Reason)
		s.st.LastErrorType = res.ErrorType
		s.st.LastErrorAt = res.Start
	}
	s.remember(ctx, res, s.st.LastError, r.keep)
	st := s.st
	s.mu.Unlock()

	in.runs.Add(ctx, 1, runsOpt)
	in.recordTransfers(ctx, s, res)
	in.duration.Record(ctx, secs, durOpt)
	for _, p := range res.Phases {
		in.phaseDuration.Record(ctx, p.End.Sub(p.Start).Seconds(), r.shared.phaseOpt(c.cfg.Type, p.Name))
	}
	if res.HasServerTiming {
		in.networkDur.Record(ctx, max(0, (res.Duration-res.ServerTiming).Seconds()), s.baseOpt)
	}
	if e := res.Echo; e != nil {
		in.icmpSent.Add(ctx, int64(e.Sent), s.baseOpt)
		in.icmpReceived.Add(ctx, int64(e.Received), s.baseOpt)
		for _, rtt := range e.RTTs {
			in.icmpRTT.Record(ctx, rtt.Seconds(), s.baseOpt)
		}
	}
	// Checks with a URL send HTTP requests; the resolution run of an
	// each_address or mesh check does not.
	if c.cfg.URL != nil && (s != c.main || (!c.cfg.EachAddress && !c.isMesh())) {
		k := httpKey{method: c.cfg.HTTP.Method, server: c.cfg.Server, code: res.StatusCode}
		if !res.Success {
			k.errType = res.ErrorType
		}
		in.httpClientDur.Record(ctx, secs, r.shared.httpOpt(k))
	}

	if res.Success {
		if r.log.Enabled(ctx, slog.LevelDebug) {
			r.log.DebugContext(ctx, runLine(s, st), "check", c.cfg.Name)
		}
	} else if r.log.Enabled(ctx, slog.LevelInfo) {
		r.log.InfoContext(ctx, runLine(s, st), "check", c.cfg.Name, "error.type", res.ErrorType)
	}
	if tr != noTransition && !r.quiet && !c.retired.Load() {
		r.alert(ctx, s, tr, res, prev, st)
	}
}

// runLine is the line for one run, "TARGET: RESULT" with every type:
// "http://host/path: 200 OK", "db:5432 [10.0.0.7:5432]: Connection to
// 10.0.0.7:5432 successful.", "<target>: FAILED: <reason>". A message that
// already starts with the target (http, dns) does not repeat it.
func runLine(s *series, st SeriesStatus) string {
	target := s.chk.display
	if a := cmp.Or(s.address, st.Address); a.IsValid() { // the sweep series names its last peer
		target += " [" + a.String() + "]"
	}
	if !st.LastSuccess {
		return target + ": FAILED: " + st.LastError
	}
	msg := strings.TrimPrefix(st.LastResult, s.chk.display+": ")
	if msg == "" {
		msg = "OK"
	}
	return target + ": " + msg
}

// spanAttrs are the attributes every run span of c starts with; probers add
// their protocol's own. The slice is shared: callers must not change it.
func (c *check) spanAttrs() []attribute.KeyValue { return c.spanKVs }

// runEachAddress resolves c's host and probes every address, each in its
// own concurrency slot, under one run span.
func (r *Runner) runEachAddress(ctx context.Context, c *check) {
	start := time.Now()
	ctx, span := r.tracer.Start(ctx, c.spanName, trace.WithTimestamp(start))
	if span.IsRecording() {
		span.SetAttributes(c.spanAttrs()...)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	addrs, err := r.resolve(rctx, c, c.cfg.MaxAddresses)
	cancel()
	r.release() // address probes take their own slots; holding this one could deadlock
	end := time.Now()
	if ctx.Err() != nil {
		span.End() // shutdown, as in runSeries
		return
	}

	res := probe.Result{Success: err == nil, Start: start, Duration: end.Sub(start),
		Phases: []probe.PhaseTiming{{Name: probe.PhaseDNS, Start: start, End: end}}}
	if err != nil {
		res.ErrorType, res.Reason = probe.ErrDNS, err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			res.ErrorType = probe.ErrTimeout
		}
	} else {
		res.Message = fmt.Sprintf("%s: resolved %d addresses", c.display, len(addrs))
	}
	r.record(ctx, c.main, res)
	if span.IsRecording() {
		r.phaseSpans(ctx, res.Phases)
	}

	series := c.addressSeries(addrs)
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for i, s := range series {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, ok := r.acquireAddressRun(ctx, c)
			if !ok {
				return
			}
			defer release()
			if res := r.runSeries(ctx, s, probe.Target{Check: c.cfg, Address: addrs[i], Resolver: r.resolver}); !res.Success {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	switch {
	case err != nil:
		span.SetStatus(codes.Error, res.Reason)
	case failed.Load() > 0:
		span.SetStatus(codes.Error, fmt.Sprintf("%d of %d addresses failed", failed.Load(), len(addrs)))
	}
	span.End()
}

// resolve returns the addresses of c's host, sorted, at most limit.
func (r *Runner) resolve(ctx context.Context, c *check, limit int) ([]netip.AddrPort, error) {
	host := c.cfg.Server.Host
	if host == "" {
		return nil, fmt.Errorf("no host in target %q", c.display)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = r.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
	}
	for i := range ips {
		ips[i] = ips[i].Unmap()
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	ips = c.cfg.Dial.Select(slices.Compact(ips))
	if len(ips) == 0 {
		return nil, fmt.Errorf("lookup %s: no addresses", host)
	}
	ips = ips[:min(len(ips), limit)]
	out := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		out[i] = netip.AddrPortFrom(ip, uint16(c.cfg.Server.Port))
	}
	return out, nil
}
