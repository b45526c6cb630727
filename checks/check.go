package checks

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// check is one configured check and its scheduling state.
type check struct {
	cfg         *config.Check
	fingerprint [sha256.Size]byte
	probe       probe.ProbeFunc
	display     string // target with secrets redacted
	spanName    string // "probe <name>"
	// spanKVs start every run span; built once, since the SDK copies them.
	spanKVs []attribute.KeyValue

	// Scheduling; guarded by Runner.mu.
	nominal time.Time // grid point the next run is jittered around
	due     time.Time
	index   int // position in the heap; -1 when not scheduled

	running atomic.Bool // a run is in flight; a due run now is skipped
	retired atomic.Bool // removed or replaced by Apply; its alerts are dropped

	main *series // the check itself; for each_address and mesh checks, the resolution

	// Mesh checks (ring or sweep): the last view, and the one series all
	// sweep results share. Nil for other checks.
	view      atomic.Pointer[mesh.View]
	sweep     *series
	sweepLast sweepEpoch // the latest epoch's sweep peers and their outcomes

	mu    sync.Mutex
	addrs map[netip.AddrPort]*series // each_address: one per resolved address; mesh: one per ring peer
}

func newCheck(cfg *config.Check, p probe.ProbeFunc) *check {
	c := &check{cfg: cfg, probe: p, index: -1, display: cfg.DisplayTarget(), spanName: "probe " + cfg.Name}
	c.fingerprint = fingerprint(cfg)
	c.spanKVs = slices.Clip(append(checkKVs(cfg), attribute.String("check.target", c.display)))
	c.main = newSeries(c, netip.AddrPort{}, 0)
	if cfg.Peers.Mode == mesh.ModeSweep {
		c.sweep = newSeries(c, netip.AddrPort{}, mesh.RoleSweep)
	}
	return c
}

// isMesh reports whether c picks its peers on the ring (ring or sweep mode).
func (c *check) isMesh() bool {
	return c.cfg.Peers.Mode == mesh.ModeRing || c.cfg.Peers.Mode == mesh.ModeSweep
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
	if !c.cfg.EachAddress && !c.isMesh() {
		return []*series{c.main}
	}
	c.mu.Lock()
	out := make([]*series, 0, 1+len(c.addrs))
	for _, s := range c.addrs {
		out = append(out, s)
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b *series) int { return a.address.Compare(b.address) })
	out = append([]*series{c.main}, out...)
	if c.sweep != nil {
		out = append(out, c.sweep)
	}
	return out
}

// addressSeries returns the series for each address (each_address; ring
// peers of a mesh check), creating new ones and forgetting addresses that
// are no longer resolved or no longer ring peers.
func (c *check) addressSeries(addrs []netip.AddrPort) []*series {
	var role mesh.Role
	if c.isMesh() {
		role = mesh.RoleRing
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[netip.AddrPort]*series, len(addrs))
	out := make([]*series, len(addrs))
	for i, a := range addrs {
		s, ok := c.addrs[a]
		if !ok {
			s = newSeries(c, a, role)
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
	address netip.AddrPort // each_address and ring series only
	role    mesh.Role      // mesh series only

	base    attribute.Set
	baseOpt metric.MeasurementOption
	runsOK  metric.MeasurementOption

	mu       sync.Mutex
	runsSkip metric.MeasurementOption // made on the first skip: most checks never skip
	failOpts []cachedFail
	st       SeriesStatus
	hist     history
	phases   []Phase // the last run's
}

func newSeries(c *check, address netip.AddrPort, role mesh.Role) *series {
	s := &series{chk: c, address: address, role: role, base: attribute.NewSet(seriesKVs(c.cfg, address, role)...)}
	s.st.Address = address
	if role != 0 {
		s.st.Role = role.String()
	}
	s.baseOpt = metric.WithAttributeSet(s.base)
	s.runsOK = metric.WithAttributeSet(attribute.NewSet(s.kvs(attrOutcome.String("success"))...))
	return s
}

// status returns a copy of the series' state.
func (s *series) status() SeriesStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}
