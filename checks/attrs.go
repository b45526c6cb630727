package checks

import (
	"net/netip"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
)

// Attribute keys of our own; the rest come from semconv.
const (
	attrCheckName = attribute.Key("check.name")
	attrCheckType = attribute.Key("check.type")
	attrPhase     = attribute.Key("phase")
	attrOutcome   = attribute.Key("outcome")
	attrMeshPeer  = attribute.Key("heartbeat.mesh.peer")
	attrMeshRole  = attribute.Key("heartbeat.mesh.role")
	attrMeshEpoch = attribute.Key("heartbeat.mesh.epoch")
)

// maxCachedSets bounds each per-series cache of failure attribute sets;
// error types are a fixed list, so it is a guard against misbehaving probers.
const maxCachedSets = 32

// checkKVs are the attributes of every per-check metric series and run span.
func checkKVs(cfg *config.Check) []attribute.KeyValue {
	kvs := make([]attribute.KeyValue, 0, 5)
	kvs = append(kvs, attrCheckName.String(cfg.Name), attrCheckType.String(cfg.Type))
	if cfg.Server.Host != "" {
		kvs = append(kvs, semconv.ServerAddressKey.String(cfg.Server.Host))
	}
	if cfg.Server.Port != 0 {
		kvs = append(kvs, semconv.ServerPortKey.Int(cfg.Server.Port))
	}
	return kvs
}

// seriesKVs are checkKVs plus, for each_address series, the address: it is
// what tells one peer's series from another's, bounded by max_addresses.
// Mesh series carry their role instead, and ring series the peer: k of
// them per sidecar. Sweep series name no peer, since the sweep reaches
// every member in time and would grow the series towards N per sidecar.
func seriesKVs(cfg *config.Check, address netip.AddrPort, role mesh.Role) []attribute.KeyValue {
	kvs := checkKVs(cfg)
	switch {
	case role == mesh.RoleRing:
		kvs = append(kvs, attrMeshPeer.String(address.Addr().String()), attrMeshRole.String(role.String()))
	case role == mesh.RoleSweep:
		kvs = append(kvs, attrMeshRole.String(role.String()))
	case address.IsValid():
		kvs = append(kvs, semconv.NetworkPeerAddressKey.String(address.Addr().String()))
	}
	return kvs
}

type cachedFail struct {
	errType string
	attrs   metric.MeasurementOption // base + error.type
	runs    metric.MeasurementOption // base + error.type + outcome=failure
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
	method  string
	server  config.HostPort
	code    int
	errType string
}

// maxSharedSets bounds each intern table; beyond it sets are built per run.
const maxSharedSets = 4096

// intern returns m's option for k, building it with build on first use.
func intern[K comparable](mu *sync.Mutex, m *map[K]metric.MeasurementOption, k K, build func() attribute.Set) metric.MeasurementOption {
	mu.Lock()
	defer mu.Unlock()
	if o, ok := (*m)[k]; ok {
		return o
	}
	o := metric.WithAttributeSet(build())
	if *m == nil {
		*m = map[K]metric.MeasurementOption{}
	}
	if len(*m) < maxSharedSets {
		(*m)[k] = o
	}
	return o
}

func (sh *sharedSets) phaseOpt(checkType, phase string) metric.MeasurementOption {
	return intern(&sh.mu, &sh.phase, phaseKey{checkType, phase}, func() attribute.Set {
		return attribute.NewSet(attrCheckType.String(checkType), attrPhase.String(phase))
	})
}

func (sh *sharedSets) httpOpt(k httpKey) metric.MeasurementOption {
	return intern(&sh.mu, &sh.http, k, func() attribute.Set {
		kvs := []attribute.KeyValue{semconv.HTTPRequestMethodKey.String(k.method)}
		if k.server.Host != "" {
			kvs = append(kvs, semconv.ServerAddressKey.String(k.server.Host), semconv.ServerPortKey.Int(k.server.Port))
		}
		if k.code != 0 {
			kvs = append(kvs, semconv.HTTPResponseStatusCodeKey.Int(k.code))
		}
		if k.errType != "" {
			kvs = append(kvs, semconv.ErrorTypeKey.String(k.errType))
		}
		return attribute.NewSet(kvs...)
	})
}
