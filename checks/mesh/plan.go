// Package mesh chooses which members of a mesh check a sidecar probes.
//
// The members are the addresses in the headless Service's DNS answer; every
// sidecar sees the same answer, places the members on the same hash ring and
// applies the same rules, so the sidecars agree on who watches whom without
// talking to each other or to the Kubernetes API:
//
//   - All: every other member (N−1 probes, N−1 series per sidecar).
//   - Ring: the K successors on the ring. Every member is watched by exactly
//     K peers, and a join or leave changes the successor sets of K members.
//   - Sweep: the ring plus Sweep rotating peers per epoch, chosen by one
//     circulant offset rule: in every epoch every member is probed by exactly
//     Sweep peers, and every ordered pair is covered within
//     Epoch × ⌈(N−1−K)/Sweep⌉.
package mesh

import (
	"errors"
	"fmt"
	"time"
)

// Mode is how a mesh check picks its peers.
type Mode uint8

// Peer modes.
const (
	ModeAll   Mode = iota + 1 // every other member
	ModeRing                  // K ring successors
	ModeSweep                 // K ring successors plus Sweep rotating peers per epoch
)

// String is the mode's configuration name.
func (m Mode) String() string {
	switch m {
	case ModeAll:
		return "all"
	case ModeRing:
		return "ring"
	case ModeSweep:
		return "sweep"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode maps a configuration name to its Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeAll, ModeRing, ModeSweep} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want all, ring or sweep)", ErrMode, s)
}

// Role says why a peer is probed; it becomes the heartbeat.mesh.role attribute.
type Role uint8

// Peer roles.
const (
	RoleAll   Role = iota + 1 // probed because the mode is All
	RoleRing                  // one of the K ring successors
	RoleSweep                 // one of this epoch's rotating peers
)

// String is the role's attribute value.
func (r Role) String() string {
	switch r {
	case RoleAll:
		return "all"
	case RoleRing:
		return "ring"
	case RoleSweep:
		return "sweep"
	}
	return fmt.Sprintf("Role(%d)", uint8(r))
}

// Labelled reports whether results for a peer of this role carry the peer's
// address as an attribute. Sweep peers change every epoch, so naming them
// would grow the series by N per sidecar over time; their spans and failure
// logs name the peer instead.
func (r Role) Labelled() bool { return r != RoleSweep }

// Errors a Plan's Validate wraps.
var (
	ErrMode  = errors.New("unknown peer mode")
	ErrK     = errors.New("ring size k must be at least 1")
	ErrSweep = errors.New("sweep size must be at least 1")
	ErrEpoch = errors.New("sweep epoch must be positive")
	ErrExtra = errors.New("setting not used by this mode")
)

// Plan is how many peers of each kind a member probes.
type Plan struct {
	Mode  Mode
	K     int           // ring successors (Ring, Sweep)
	Sweep int           // rotating peers per epoch (Sweep)
	Epoch time.Duration // how long one set of rotating peers lasts (Sweep)
}

// Validate reports every setting that does not fit the mode.
func (p Plan) Validate() error {
	var errs []error
	switch p.Mode {
	case ModeAll:
		if p.K != 0 || p.Sweep != 0 || p.Epoch != 0 {
			errs = append(errs, fmt.Errorf("%w: k, sweep and epoch with mode all", ErrExtra))
		}
	case ModeRing, ModeSweep:
		if p.K < 1 {
			errs = append(errs, ErrK)
		}
		if p.Mode == ModeRing && (p.Sweep != 0 || p.Epoch != 0) {
			errs = append(errs, fmt.Errorf("%w: sweep and epoch with mode ring", ErrExtra))
		}
		if p.Mode == ModeSweep && p.Sweep < 1 {
			errs = append(errs, ErrSweep)
		}
		if p.Mode == ModeSweep && p.Epoch <= 0 {
			errs = append(errs, ErrEpoch)
		}
	default:
		errs = append(errs, fmt.Errorf("%w: %v", ErrMode, p.Mode))
	}
	return errors.Join(errs...)
}

// EpochAt is the sweep epoch at t: wall time divided by the period, rounded
// down. Sidecars agree on it as far as their clocks agree; a sidecar a little
// off only shifts its own rotating peers for that long.
func EpochAt(t time.Time, period time.Duration) int64 {
	if period <= 0 {
		return 0
	}
	n, d := t.UnixNano(), int64(period)
	e := n / d
	if n%d < 0 {
		e-- // floor, not truncation, before 1970
	}
	return e
}

// CoverageEpochs is ⌈(n−1−k)/sweep⌉: how many epochs a stable view of n
// members needs until the sweep has covered every ordered pair the ring does
// not. Zero when the ring alone covers every pair.
func CoverageEpochs(n, k, sweep int) int {
	rest := n - 1 - k
	if rest <= 0 {
		return 0
	}
	if sweep < 1 {
		return -1 // never
	}
	return (rest + sweep - 1) / sweep
}
