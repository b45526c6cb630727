//go:build race

package payload

// The race detector slows every goroutine several times over; the storm
// tests' stall bound scales with it (see raceSlowdown in storm_test.go).
func init() { raceSlowdown = 10 }
