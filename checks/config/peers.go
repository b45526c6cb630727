package config

import (
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
)

// Defaults and limits of the peers block.
const (
	DefaultPeersK     = 3 // peers.k: ring successors
	DefaultPeersSweep = 8 // peers.sweep: rotating peers per epoch
	MaxPeersK         = 100
	MaxPeersSweep     = 1000
)

// DefaultPeersEpoch is peers.epoch when unset: two runs per set of rotating peers.
func DefaultPeersEpoch(interval time.Duration) time.Duration { return 2 * interval }

// peersYAML is the peers block of a mesh check.
type peersYAML struct {
	Mode  ast.Node `yaml:"mode"`  // all, ring or sweep
	K     ast.Node `yaml:"k"`     // ring successors (ring, sweep)
	Sweep ast.Node `yaml:"sweep"` // rotating peers per epoch (sweep)
	Epoch ast.Node `yaml:"epoch"` // a duration: how long one set of rotating peers lasts (sweep)
}

// peers decodes the peers block; the mode is required in it.
func (d *yamlDecoder) peers(o *obj[peersYAML], path string) mesh.Plan {
	var p mesh.Plan
	if !openObj(d, o, path, "must be a mapping") {
		return p
	}
	at := func(key string) string { return joinPath(path, key) }
	if o.v.Mode == nil {
		d.l.add(d.lineFor(path), at("mode"), ErrMissingField, "required (all, ring or sweep)")
	} else if s, ok := d.str(o.v.Mode, at("mode")); ok {
		m, err := mesh.ParseMode(s)
		if err != nil {
			d.l.add(d.lineFor(at("mode")), at("mode"), ErrInvalidValue, "unknown mode %q (want all, ring or sweep)", s)
		}
		p.Mode = m
	}
	p.K, _ = d.integer(o.v.K, at("k"))
	p.Sweep, _ = d.integer(o.v.Sweep, at("sweep"))
	p.Epoch, _ = d.duration(o.v.Epoch, at("epoch"))
	return p
}

// applyPeersDefaults fills k, sweep and epoch for the modes that use them.
// Mode all is each_address under its mesh name.
func (c *Check) applyPeersDefaults(unset func(field string, zero bool) bool) {
	p := &c.Peers
	if p.Mode == mesh.ModeAll {
		c.EachAddress = true
	}
	if (p.Mode == mesh.ModeRing || p.Mode == mesh.ModeSweep) && unset("peers.k", p.K == 0) {
		p.K = DefaultPeersK
	}
	if p.Mode != mesh.ModeSweep {
		return
	}
	if unset("peers.sweep", p.Sweep == 0) {
		p.Sweep = DefaultPeersSweep
	}
	if unset("peers.epoch", p.Epoch == 0) {
		p.Epoch = DefaultPeersEpoch(c.Interval)
	}
}

// peersProblems validates the peers block against the mode and the check.
func (c *Check) peersProblems() []problem {
	p := c.Peers
	var ps []problem
	add := func(field, format string, args ...any) {
		ps = append(ps, probf("peers."+field, ErrInvalidValue, format, args...))
	}
	switch p.Mode {
	case 0:
		if p != (mesh.Plan{}) {
			ps = append(ps, probf("peers.mode", ErrMissingField, "required (all, ring or sweep)"))
		}
		return ps
	case mesh.ModeAll:
		if p.K != 0 || p.Sweep != 0 || p.Epoch != 0 {
			add("mode", "mode all probes every member: k, sweep and epoch are for ring and sweep")
		}
		return ps // validated as each_address
	case mesh.ModeRing, mesh.ModeSweep:
	default:
		add("mode", "unknown mode %v (want all, ring or sweep)", p.Mode)
		return ps
	}
	if c.Type != TypeHTTP && c.Type != TypeTCP && c.Type != TypeThroughput {
		add("mode", "mode %s is for http, tcp and throughput checks, not %s", p.Mode, c.Type)
	} else if targetIsIP(c) {
		add("mode", "target host is an IP address; a mesh needs a name that resolves to its members (a headless Service)")
	}
	if c.EachAddress {
		ps = append(ps, probf("each_address", ErrInvalidValue, "probes every member; remove it to use peers mode %s", p.Mode))
	}
	if c.Type == TypeHTTP && c.HTTP.ProxyURL != nil {
		add("mode", "cannot be used with http.proxy_url: the proxy resolves the target")
	}
	if p.K < 1 || p.K > MaxPeersK {
		add("k", "must be between 1 and %d", MaxPeersK)
	}
	if p.Mode == mesh.ModeRing {
		if p.Sweep != 0 || p.Epoch != 0 {
			add("mode", "sweep and epoch are only used with mode sweep")
		}
		return ps
	}
	if p.Sweep < 1 || p.Sweep > MaxPeersSweep {
		add("sweep", "must be between 1 and %d", MaxPeersSweep)
	}
	// Every epoch needs a run, even with the runs jittered apart, or its
	// rotating peers are never probed.
	if least := time.Duration(float64(c.Interval) * (1 + 2*c.Jitter)); p.Epoch < least {
		add("epoch", "must be at least the interval plus twice its jitter (%s), so every epoch gets a run", least)
	}
	return ps
}
