package probe

import (
	"context"
	"fmt"
	"time"
)

// probeTLS completes a TLS handshake with host:port, verifies the
// certificate per the check's TLS options and enforces min_days_left.
func probeTLS(ctx context.Context, t Target) Result {
	addr := dialAddress(t)
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		if err := doTLS(ctx, t, addr, res, rec); err != nil {
			return "", err
		}
		return fmt.Sprintf("TLS connection to %s successful, certificate valid until %s.",
			addr, res.CertExpiry.UTC().Format(time.DateOnly)), nil
	}, func(reason string) string {
		return fmt.Sprintf("TLS connection to %s failed: %s", addr, reason)
	})
}

func doTLS(ctx context.Context, t Target, addr string, res *Result, rec *recorder) error {
	conn, state, err := connect(ctx, t, addr, rec)
	if err != nil {
		return err
	}
	// Closed right away: the handshake is the whole probe, and closing
	// sends close_notify so the server logs no error.
	defer conn.Close()
	return checkCert(res, state, t.Check.TLS.MinDaysLeft)
}
