package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
)

// registry maps each check type to its prober: a new check type is one line
// here, next to its own file.
func registry() map[string]ProbeFunc {
	return map[string]ProbeFunc{
		config.TypeHTTP:       probeHTTP,
		config.TypeTCP:        probeTCP,
		config.TypeTLS:        probeTLS,
		config.TypeDNS:        probeDNS,
		config.TypeGRPC:       probeGRPC,
		config.TypeICMP:       probeICMP,
		config.TypeMTU:        probeMTU,
		config.TypeThroughput: probeThroughput,
	}
}

// Lookup returns the prober of a check type (one of the config.Type* constants).
func Lookup(checkType string) (ProbeFunc, bool) {
	f, ok := registry()[checkType]
	return f, ok
}

// Run calls f for t and returns a complete Result even when f panics or leaves fields out.
func Run(ctx context.Context, f ProbeFunc, t Target) (res Result) {
	// One faulty prober must not take the scheduler down: a nil check or a
	// panic becomes a failed run with error.type "other", and a missing
	// start, duration or error type is filled in.
	start := time.Now()
	if t.Check == nil {
		return Result{Start: start, Duration: time.Since(start), ErrorType: ErrOther,
			Reason: "no check configured", Message: "no check configured"}
	}
	defer func() {
		if p := recover(); p != nil {
			reason := fmt.Sprintf("internal error: %s prober panicked: %v", t.Check.Type, p)
			res = Result{ErrorType: ErrOther, Reason: reason, Message: t.Check.DisplayTarget() + ": " + reason}
		}
		if res.Start.IsZero() {
			res.Start = start
		}
		if res.Duration <= 0 {
			res.Duration = time.Since(res.Start)
		}
		if !res.Success && res.ErrorType == "" {
			res.ErrorType = ErrOther
		}
	}()
	return f(ctx, t)
}
