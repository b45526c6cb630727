package config

import (
	"net/url"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Throughput directions.
const (
	DirectionDownload = "download" // GET /heartbeat/{n} from the peer
	DirectionUpload   = "upload"   // POST n bytes to the peer
	DirectionBoth     = "both"     // download, then upload, on one connection
)

// Defaults and limits of the throughput block.
const (
	// DefaultThroughputBytes per direction per run: each run costs this
	// much real traffic per peer and direction.
	DefaultThroughputBytes = 1 << 20
	MaxThroughputBytes     = 1 << 30
	DefaultDirection       = DirectionBoth
)

var directions = []string{DirectionDownload, DirectionUpload, DirectionBoth}

// ThroughputOptions configures a throughput check.
type ThroughputOptions struct {
	Direction string // download, upload or both; always set, default both
	Bytes     int64  // bytes per direction and run; always set, default 1 MiB
	// MinBitsPerSecond fails a run whose rate in either direction is lower (0: off).
	MinBitsPerSecond float64
	// URL is the payload server's base URL, parsed once from the target.
	URL *url.URL
}

// Download and Upload report which directions a run measures.
func (o *ThroughputOptions) Download() bool { return o.Direction != DirectionUpload }

// Upload reports whether a run measures the upload direction.
func (o *ThroughputOptions) Upload() bool { return o.Direction != DirectionDownload }

func (o *ThroughputOptions) applyDefaults(unset func(field string, zero bool) bool) {
	if unset("throughput.direction", o.Direction == "") {
		o.Direction = DefaultDirection
	}
	if unset("throughput.bytes", o.Bytes == 0) {
		o.Bytes = DefaultThroughputBytes
	}
}

func (o *ThroughputOptions) problems() []problem {
	var ps []problem
	if o.Direction != "" && !slices.Contains(directions, o.Direction) {
		ps = append(ps, probf("direction", ErrInvalidValue, "unknown direction %q (want %s)", o.Direction, orList(directions)))
	}
	if o.Bytes < 1 || o.Bytes > MaxThroughputBytes {
		ps = append(ps, probf("bytes", ErrInvalidValue, "must be between 1 and %d", MaxThroughputBytes))
	}
	if o.MinBitsPerSecond < 0 {
		ps = append(ps, probf("min_bits_per_second", ErrInvalidValue, "must not be negative"))
	}
	return ps
}

// deriveThroughput: the target is the base URL of a payload server; the
// prober appends /heartbeat/{n} to its path.
func deriveThroughput(c *Check) {
	deriveURL(c)
	c.Throughput.URL, c.URL = c.URL, nil
}

// throughputYAML is the throughput block: direction, bytes, minimum rate.
type throughputYAML struct {
	Direction        ast.Node `yaml:"direction"`
	Bytes            ast.Node `yaml:"bytes"`
	MinBitsPerSecond ast.Node `yaml:"min_bits_per_second"`
}

func (d *yamlDecoder) throughputOptions(o *obj[throughputYAML], path string) ThroughputOptions {
	var t ThroughputOptions
	if !openObj(d, o, path, "must be a mapping") {
		return t
	}
	if s, ok := d.str(o.v.Direction, joinPath(path, "direction")); ok {
		t.Direction = strings.ToLower(s)
	}
	n, _ := d.integer(o.v.Bytes, joinPath(path, "bytes"))
	t.Bytes = int64(n)
	t.MinBitsPerSecond, _ = d.float(o.v.MinBitsPerSecond, joinPath(path, "min_bits_per_second"))
	return t
}
