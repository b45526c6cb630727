package probe

import (
	"context"
	"fmt"
	"time"
)

// probeTLS completes a TLS handshake with host:port, verifies the
// certificate per the check's TLS options and enforces min_days_left.
func probeTLS(ctx context.Context, t Target) Result {
	res := Result{Start: time.Now()}
	rec := newPhaseRecorder()
	addr := dialAddress(t)
	err := doTLS(ctx, t, addr, &res, rec)
	finish(ctx, &res, rec, err)
	if res.Success {
		res.Message = fmt.Sprintf("TLS connection to %s successful, certificate valid until %s.",
			addr, res.CertExpiry.UTC().Format(time.DateOnly))
	} else {
		res.Message = fmt.Sprintf("TLS connection to %s failed: %s", addr, res.Reason)
	}
	return res
}

func doTLS(ctx context.Context, t Target, addr string, res *Result, rec *phaseRecorder) error {
	conn, state, err := connect(ctx, t, addr, true, rec)
	if err != nil {
		return err
	}
	// Closed right away: the handshake is the whole probe, and closing
	// sends close_notify so the server logs no error.
	defer conn.Close()
	return checkCert(res, state, t.Check.TLS.MinDaysLeft)
}
