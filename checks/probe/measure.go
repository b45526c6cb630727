package probe

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// measure is the frame every prober shares: it runs do under a fresh
// recorder, fills in the bookkeeping and sets the run's message, which is
// do's on success and failed(reason) on failure.
func measure(ctx context.Context, do func(*Result, *recorder) (string, error), failed func(reason string) string) Result {
	res := Result{Start: time.Now()}
	rec := newRecorder()
	msg, err := do(&res, rec)
	finish(ctx, &res, rec, err)
	if res.Success {
		res.Message = msg
	} else {
		res.Message = failed(res.Reason)
	}
	return res
}

// finish fills in duration, phases, dialled address, and on failure the
// error.type and a secret-free reason.
func finish(ctx context.Context, res *Result, rec *recorder, err error) {
	now := time.Now()
	res.Duration = now.Sub(res.Start)
	phases, running, remote := rec.closeAll(now)
	res.Phases = phases
	if !res.Peer.IsValid() {
		res.Peer = remote
	}
	if err == nil {
		res.Success = true
		return
	}
	res.Success = false
	var expired *expiredError
	if errors.As(err, &expired) && res.CertExpiry.IsZero() {
		// The handshake rejected the certificate before the prober saw it.
		res.CertExpiry = expired.leaf.NotAfter
	}
	res.ErrorType = classify(ctx, err)
	res.Reason = reason(err, res.ErrorType, res.Duration, running)
}

// reason turns err into the text of Result.Reason. url.Error is unwrapped
// because it repeats the URL, whose query may hold tokens.
func reason(err error, errType string, elapsed time.Duration, running string) string {
	if errType == ErrTimeout {
		if running != "" {
			return fmt.Sprintf("timed out after %v during %s", elapsed.Round(time.Millisecond), running)
		}
		return fmt.Sprintf("timed out after %v", elapsed.Round(time.Millisecond))
	}
	var ue *url.Error
	for errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}
