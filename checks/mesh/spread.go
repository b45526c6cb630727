package mesh

import "time"

// Request headers a mesh probe carries, so the peer's payload server can
// count the probes it receives and its logs can name the sender.
const (
	HeaderCheck = "Heartbeat-Mesh-Check" // the mesh check's name
	HeaderFrom  = "Heartbeat-Mesh-From"  // Identity.String() of the sender
)

// Spread returns when, after a run starts, each of n probes should start:
// evenly over window, all shifted by phase (in [0, 1), drawn per run), so a
// sidecar's k+sweep probes do not leave in one burst and sidecars that
// started together drift apart.
func Spread(n int, window time.Duration, phase float64) []time.Duration {
	out := make([]time.Duration, n)
	if n == 0 || window <= 0 {
		return out
	}
	phase = min(max(phase, 0), 1)
	step := float64(window) / float64(n)
	for i := range out {
		out[i] = time.Duration((float64(i) + phase) * step)
	}
	return out
}
