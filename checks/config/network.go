package config

import (
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"

	"github.com/heartbeat-sidecar/heartbeat/checks/icmp"
)

// Defaults and bounds of the icmp and mtu checks.
const (
	DefaultICMPCount   = icmp.DefaultCount    // icmp.count
	DefaultICMPSpacing = icmp.DefaultInterval // icmp.spacing
	DefaultICMPSize    = icmp.DefaultSize     // icmp.size: ping(8)'s 64-byte ICMP message
	MaxICMPCount       = 1000
	MaxICMPSize        = icmp.MaxSize // the largest IPv4 echo payload
	MaxTTL             = 255

	DefaultMTUMode         = MTUModeICMP
	DefaultMTUTries        = icmp.DefaultTries       // mtu.tries in icmp mode
	DefaultMTUHTTPTries    = icmp.DefaultHTTPTries   // mtu.tries in http mode
	DefaultMTUWait         = icmp.DefaultWait        // mtu.wait
	DefaultMTUFetchTimeout = icmp.DefaultHTTPTimeout // mtu.fetch_timeout (http mode)
	MinMTU                 = 68                      // the smallest IPv4 MTU
	MaxMTU                 = icmp.MaxPacket
	MaxMTUTries            = 10
)

// Path MTU discovery modes.
const (
	MTUModeICMP = "icmp" // DF-set echoes: exact, needs ICMP through the path
	MTUModeHTTP = "http" // /heartbeat/{n} of a payload server: for paths that filter ICMP
)

// DefaultMTULadder returns mtu.ladder's default: the sizes tried before the binary search.
func DefaultMTULadder() []int { return icmp.DefaultLadder() }

// DefaultMTUSizes returns mtu.sizes's default: the body sizes an http-mode search fetches.
func DefaultMTUSizes() []int { return icmp.DefaultHTTPSizes() }

// ICMPOptions configures an icmp check: one burst of echo requests per run.
type ICMPOptions struct {
	Count   int           // echo requests per run
	Spacing time.Duration // between requests
	Size    int           // ICMP payload bytes
	// DontFragment sets DF; the kernel then sends at the interface MTU.
	DontFragment bool
	TTL          int // 0 keeps the system default
	// IPVersion is 4 or 6 to resolve the target to that family only; 0 takes
	// the first address.
	IPVersion int
	// MaxLoss is the fraction of packets a run may lose and still pass; total
	// loss always fails. Default 1: only total loss fails.
	MaxLoss float64
}

// MTUOptions configures an mtu check: the largest packet that crosses the path to the target.
type MTUOptions struct {
	Mode string // MTUModeICMP or MTUModeHTTP; always set
	// MinMTU fails the check when the path MTU is below it (0: off); icmp mode.
	MinMTU int
	// MaxMTU is the largest size searched; default the ladder's largest.
	MaxMTU int
	// Ladder is the sizes tried before the binary search; always set in icmp mode.
	Ladder []int
	// Tries is how many echoes a size gets before it counts as lost.
	Tries int
	// Wait is how long each echo waits for its reply.
	Wait      time.Duration
	TTL       int
	IPVersion int
	// Sizes are the response bodies an http-mode search fetches; always set in http mode.
	Sizes []int
	// FetchTimeout bounds each http-mode fetch: a fetch that takes longer stalled.
	FetchTimeout time.Duration
}

func (o *ICMPOptions) applyDefaults(unset func(field string, zero bool) bool) {
	if unset("icmp.count", o.Count == 0) {
		o.Count = DefaultICMPCount
	}
	if unset("icmp.spacing", o.Spacing == 0) {
		o.Spacing = DefaultICMPSpacing
	}
	if unset("icmp.size", o.Size == 0) {
		o.Size = DefaultICMPSize
	}
	if unset("icmp.max_loss", o.MaxLoss == 0) {
		o.MaxLoss = 1
	}
}

func (o *MTUOptions) applyDefaults(unset func(field string, zero bool) bool) {
	if unset("mtu.mode", o.Mode == "") {
		o.Mode = DefaultMTUMode
	}
	switch o.Mode {
	case MTUModeICMP:
		if len(o.Ladder) == 0 {
			o.Ladder = DefaultMTULadder()
		}
		if unset("mtu.max_mtu", o.MaxMTU == 0) {
			o.MaxMTU = slices.Max(o.Ladder)
		}
		if unset("mtu.tries", o.Tries == 0) {
			o.Tries = DefaultMTUTries
		}
		if unset("mtu.wait", o.Wait == 0) {
			o.Wait = DefaultMTUWait
		}
	case MTUModeHTTP:
		if len(o.Sizes) == 0 {
			o.Sizes = DefaultMTUSizes()
		}
		if unset("mtu.fetch_timeout", o.FetchTimeout == 0) {
			o.FetchTimeout = DefaultMTUFetchTimeout
		}
		if unset("mtu.tries", o.Tries == 0) {
			o.Tries = DefaultMTUHTTPTries
		}
	}
}

func (o *ICMPOptions) problems() []problem {
	var ps []problem
	add := func(field string, format string, args ...any) {
		ps = append(ps, probf(field, ErrInvalidValue, format, args...))
	}
	if o.Count < 1 || o.Count > MaxICMPCount {
		add("count", "must be between 1 and %d", MaxICMPCount)
	}
	if o.Spacing <= 0 {
		add("spacing", "must be greater than 0")
	}
	if o.Size < 1 || o.Size > MaxICMPSize {
		add("size", "must be between 1 and %d bytes", MaxICMPSize)
	}
	ps = append(ps, ttlVersionProblems(o.TTL, o.IPVersion)...)
	if o.MaxLoss < 0 || o.MaxLoss > 1 || o.MaxLoss != o.MaxLoss {
		add("max_loss", "must be a fraction between 0 and 1")
	}
	return ps
}

func (o *MTUOptions) problems() []problem {
	var ps []problem
	add := func(field string, format string, args ...any) {
		ps = append(ps, probf(field, ErrInvalidValue, format, args...))
	}
	switch o.Mode {
	case MTUModeICMP:
		for i, s := range o.Ladder {
			if s < MinMTU || s > MaxMTU {
				add(indexPath("ladder", i), "must be between %d and %d bytes", MinMTU, MaxMTU)
			}
		}
		if o.MaxMTU < MinMTU || o.MaxMTU > MaxMTU {
			add("max_mtu", "must be between %d and %d bytes", MinMTU, MaxMTU)
		}
		if o.MinMTU != 0 && (o.MinMTU < MinMTU || o.MinMTU > o.MaxMTU) {
			add("min_mtu", "must be between %d and max_mtu (%d)", MinMTU, o.MaxMTU)
		}
		if o.Wait <= 0 {
			add("wait", "must be greater than 0")
		}
		ps = append(ps, ttlVersionProblems(o.TTL, o.IPVersion)...)
		ps = append(ps, unusedIn(o.Mode, map[string]bool{"sizes": len(o.Sizes) > 0, "fetch_timeout": o.FetchTimeout != 0})...)
	case MTUModeHTTP:
		for i, s := range o.Sizes {
			if s < 0 || (i > 0 && s <= o.Sizes[i-1]) {
				add(indexPath("sizes", i), "must be ascending body sizes in bytes")
			}
		}
		if o.FetchTimeout <= 0 {
			add("fetch_timeout", "must be greater than 0")
		}
		ps = append(ps, unusedIn(o.Mode, map[string]bool{
			"ladder": len(o.Ladder) > 0, "max_mtu": o.MaxMTU != 0, "min_mtu": o.MinMTU != 0,
			"wait": o.Wait != 0, "ttl": o.TTL != 0, "ip_version": o.IPVersion != 0,
		})...)
	default:
		add("mode", "unknown mode %q (want %s or %s)", o.Mode, MTUModeICMP, MTUModeHTTP)
		return ps
	}
	if o.Tries < 1 || o.Tries > MaxMTUTries {
		add("tries", "must be between 1 and %d", MaxMTUTries)
	}
	return ps
}

// unusedIn reports the options set (per set) that the mode ignores.
func unusedIn(mode string, set map[string]bool) []problem {
	var ps []problem
	for _, k := range slices.Sorted(maps.Keys(set)) {
		if set[k] {
			ps = append(ps, probf(k, ErrInvalidValue, "not used in %s mode", mode))
		}
	}
	return ps
}

func ttlVersionProblems(ttl, version int) []problem {
	var ps []problem
	if ttl < 0 || ttl > MaxTTL {
		ps = append(ps, probf("ttl", ErrInvalidValue, "must be between 1 and %d (0: the system default)", MaxTTL))
	}
	if version != 0 && version != 4 && version != 6 {
		ps = append(ps, probf("ip_version", ErrInvalidValue, "must be 4 or 6 (0: either)"))
	}
	return ps
}

// hostProblem is for types whose target is a bare host: a DNS name or an IP
// address, without a port.
func hostProblem(s string) string {
	switch {
	case strings.Contains(s, "://"):
		return "must be a host name or IP address, not a URL"
	case net.ParseIP(s) != nil:
		return ""
	case strings.Contains(s, ":"):
		return "must be a host name or IP address, without a port"
	case !validHost(s):
		return "must be a host name or IP address (e.g. 10.0.0.1 or gw.example.com)"
	}
	return ""
}

// mtuTargetProblem: a host for icmp mode, a payload server's URL for http
// mode; which one the mode wants is checked with the options.
func mtuTargetProblem(s string) string {
	if strings.Contains(s, "://") {
		return urlProblem(s)
	}
	return hostProblem(s)
}

// deriveHost is for types that probe a host, not a port.
func deriveHost(c *Check) {
	c.Server = HostPort{Host: strings.Trim(c.Target, "[]")}
}

// deriveMTU: http mode has a URL like an http check, icmp mode a host.
func deriveMTU(c *Check) {
	if strings.Contains(c.Target, "://") {
		deriveURL(c)
		return
	}
	deriveHost(c)
}

// icmpCheckProblems: the burst must be sent within the check's timeout.
func icmpCheckProblems(c *Check) []problem {
	o := c.ICMP
	if o.Count > 1 && o.Spacing > 0 && c.Timeout > 0 && time.Duration(o.Count-1)*o.Spacing >= c.Timeout {
		return []problem{probf("icmp.spacing", ErrInvalidValue,
			"count × spacing must fit in the check's timeout (%s) with time left for the last reply", c.Timeout)}
	}
	return nil
}

// mtuCheckProblems: the target must fit the mode, and a search must fit in
// the check's timeout.
func mtuCheckProblems(c *Check) []problem {
	var ps []problem
	add := func(field string, format string, args ...any) {
		ps = append(ps, probf(field, ErrInvalidValue, format, args...))
	}
	o := c.MTU
	isURL := strings.Contains(c.Target, "://")
	switch {
	case o.Mode == MTUModeHTTP && !isURL && c.Target != "":
		add("target", "http mode needs the payload server's URL (e.g. http://10.0.0.1:8080)")
	case o.Mode == MTUModeICMP && isURL:
		add("target", "icmp mode needs a host name or IP address; a URL needs mode: http")
	case isURL:
		if u, err := url.Parse(c.Target); err == nil && u.Path != "" && u.Path != "/" {
			add("target", "must be the payload server's base URL: /heartbeat/{n} is added")
		}
	}
	if c.Timeout <= 0 {
		return ps
	}
	switch {
	case o.Mode == MTUModeICMP && o.Wait > 0 && time.Duration(2*o.Tries)*o.Wait > c.Timeout:
		add("mtu.wait", "tries × wait must fit in half the check's timeout (%s): a search needs several sizes", c.Timeout)
	case o.Mode == MTUModeHTTP && o.FetchTimeout > c.Timeout:
		add("mtu.fetch_timeout", "must not exceed the check's timeout (%s)", c.Timeout)
	}
	return ps
}

type icmpYAML struct {
	Count        ast.Node `yaml:"count"`
	Spacing      ast.Node `yaml:"spacing"`
	Size         ast.Node `yaml:"size"`
	DontFragment ast.Node `yaml:"dont_fragment"`
	TTL          ast.Node `yaml:"ttl"`
	IPVersion    ast.Node `yaml:"ip_version"`
	MaxLoss      ast.Node `yaml:"max_loss"`
}

type mtuYAML struct {
	Mode         ast.Node       `yaml:"mode"`
	MinMTU       ast.Node       `yaml:"min_mtu"`
	MaxMTU       ast.Node       `yaml:"max_mtu"`
	Ladder       list[ast.Node] `yaml:"ladder"`
	Tries        ast.Node       `yaml:"tries"`
	Wait         ast.Node       `yaml:"wait"`
	TTL          ast.Node       `yaml:"ttl"`
	IPVersion    ast.Node       `yaml:"ip_version"`
	Sizes        list[ast.Node] `yaml:"sizes"`
	FetchTimeout ast.Node       `yaml:"fetch_timeout"`
}

func (d *yamlDecoder) icmpOptions(o *obj[icmpYAML], path string) ICMPOptions {
	var opts ICMPOptions
	if !openObj(d, o, path, "must be a mapping") {
		return opts
	}
	at := func(key string) string { return joinPath(path, key) }
	opts.Count, _ = d.integer(o.v.Count, at("count"))
	opts.Spacing, _ = d.duration(o.v.Spacing, at("spacing"))
	opts.Size, _ = d.integer(o.v.Size, at("size"))
	opts.DontFragment, _ = d.boolean(o.v.DontFragment, at("dont_fragment"))
	opts.TTL, _ = d.integer(o.v.TTL, at("ttl"))
	opts.IPVersion, _ = d.integer(o.v.IPVersion, at("ip_version"))
	opts.MaxLoss, _ = d.float(o.v.MaxLoss, at("max_loss"))
	return opts
}

func (d *yamlDecoder) mtuOptions(o *obj[mtuYAML], path string) MTUOptions {
	var opts MTUOptions
	if !openObj(d, o, path, "must be a mapping") {
		return opts
	}
	at := func(key string) string { return joinPath(path, key) }
	if m, ok := d.str(o.v.Mode, at("mode")); ok {
		opts.Mode = strings.ToLower(m)
	}
	opts.MinMTU, _ = d.integer(o.v.MinMTU, at("min_mtu"))
	opts.MaxMTU, _ = d.integer(o.v.MaxMTU, at("max_mtu"))
	opts.Ladder = d.integers(&o.v.Ladder, at("ladder"))
	opts.Tries, _ = d.integer(o.v.Tries, at("tries"))
	opts.Wait, _ = d.duration(o.v.Wait, at("wait"))
	opts.TTL, _ = d.integer(o.v.TTL, at("ttl"))
	opts.IPVersion, _ = d.integer(o.v.IPVersion, at("ip_version"))
	opts.Sizes = d.integers(&o.v.Sizes, at("sizes"))
	opts.FetchTimeout, _ = d.duration(o.v.FetchTimeout, at("fetch_timeout"))
	return opts
}

// integers reads a list of integers; bad items are reported and skipped.
func (d *yamlDecoder) integers(l *list[ast.Node], path string) []int {
	items, _ := l.get(d, path)
	var out []int
	for i, n := range items {
		if v, ok := d.integer(n, indexPath(path, i)); ok {
			out = append(out, v)
		}
	}
	return out
}
