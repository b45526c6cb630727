package checks

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/metric"
)

// scopeName is the instrumentation scope of everything the checks emit.
const scopeName = "github.com/heartbeat-sidecar/heartbeat/checks"

// Bucket boundaries in seconds: the SDK's default boundaries are meant for
// milliseconds and would put every probe into the first bucket. The
// telemetry package's views may replace them.
var (
	durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}
	// Round trips in a lab or a cluster take microseconds; across the
	// internet, tens to hundreds of milliseconds.
	rttBuckets      = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}
	latenessBuckets = []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}
)

// instruments are created once per Runner; per-check attribute sets are
// precomputed on the check so a run only records.
type instruments struct {
	duration      metric.Float64Histogram
	phaseDuration metric.Float64Histogram
	networkDur    metric.Float64Histogram
	httpClientDur metric.Float64Histogram
	runs          metric.Int64Counter
	lateness      metric.Float64Histogram
	alertsDropped metric.Int64Counter
	reloadFails   metric.Int64Counter
	icmpRTT       metric.Float64Histogram
	icmpSent      metric.Int64Counter
	icmpReceived  metric.Int64Counter

	// Gauges are observable so that series of removed checks and of
	// addresses that left DNS disappear instead of repeating a stale value.
	success    metric.Int64ObservableGauge
	up         metric.Int64ObservableGauge
	certExpiry metric.Int64ObservableGauge
	statusCode metric.Int64ObservableGauge
	pathMTU    metric.Int64ObservableGauge

	throughput throughputInstruments
}

func newInstruments(m metric.Meter) (*instruments, error) {
	var (
		in   instruments
		errs []error
	)
	hist := func(name, desc string, buckets []float64) metric.Float64Histogram {
		h, err := m.Float64Histogram(name, metric.WithUnit("s"), metric.WithDescription(desc),
			metric.WithExplicitBucketBoundaries(buckets...))
		errs = append(errs, err)
		return h
	}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return c
	}
	gauge := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := m.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return g
	}
	in.duration = hist("probe.duration", "Duration of a probe run.", durationBuckets)
	in.phaseDuration = hist("probe.phase.duration", "Duration of one phase of a probe run.", durationBuckets)
	in.networkDur = hist("probe.network.duration", "Probe duration minus the server time reported in Server-Timing.", durationBuckets)
	in.httpClientDur = hist("http.client.request.duration", "Duration of HTTP client requests.", durationBuckets)
	in.lateness = hist("heartbeat.scheduler.lateness", "Time between a run's scheduled and actual start.", latenessBuckets)
	in.icmpRTT = hist("probe.icmp.rtt", "Round-trip time of each ICMP echo reply.", rttBuckets)
	in.icmpSent = counter("probe.icmp.packets.sent", "{packet}", "ICMP echo requests sent; loss is 1 - received/sent over any window.")
	in.icmpReceived = counter("probe.icmp.packets.received", "{packet}", "Distinct ICMP echo replies received in time.")
	in.runs = counter("probe.runs", "{run}", "Probe runs by outcome (success, failure, skipped).")
	in.alertsDropped = counter("heartbeat.alerts.dropped", "{alert}", "Syslog alerts dropped because the syslog queue was full.")
	in.reloadFails = counter("heartbeat.config.reload.failures", "{reload}", "Checks file reloads rejected; the previous checks keep running.")
	// No unit on 0/1 and code gauges: Prometheus would append "_ratio" to a unit of "1".
	in.success = gauge("probe.success", "", "Whether the last probe run succeeded (1) or failed (0).")
	in.up = gauge("heartbeat.check.up", "", "Check state after thresholds: 1 up, 0 down; absent while unknown.")
	in.certExpiry = gauge("probe.tls.cert.expiry", "s", "Expiry of the leaf certificate, as a Unix time.")
	in.statusCode = gauge("probe.http.status_code", "", "HTTP status code of the last run.")
	in.pathMTU = gauge("probe.path_mtu", "By", "Largest IP packet that crossed the path in the last mtu run.")
	var err error
	in.throughput, err = newThroughputInstruments(m)
	errs = append(errs, err)
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("checks: creating instruments: %w", err)
		}
	}
	return &in, nil
}

// registerGauges installs the one callback that reports every series' gauges.
func (r *Runner) registerGauges(m metric.Meter) (metric.Registration, error) {
	in := r.inst
	return m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for _, c := range r.snapshot() {
			for _, s := range c.allSeries() {
				s.observe(o, in)
			}
		}
		return nil
	}, in.success, in.up, in.certExpiry, in.statusCode, in.pathMTU)
}

// observe reports the series' gauges from the last run.
func (s *series) observe(o metric.Observer, in *instruments) {
	st := s.status()
	if st.Runs == 0 {
		return
	}
	o.ObserveInt64(in.success, b2i(st.LastSuccess), s.baseOpt)
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
	if st.PathMTU != 0 {
		o.ObserveInt64(in.pathMTU, int64(st.PathMTU), s.baseOpt)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
