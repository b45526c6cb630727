package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"

	"go.opentelemetry.io/otel/propagation"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/icmp"
)

// probeMTU finds the path MTU to the target with DF-set echoes, or in http
// mode the largest response of a payload server that arrives whole. A black
// hole (large packets vanish without "fragmentation needed") and a path MTU
// below min_mtu fail the run; the size found is reported either way.
func probeMTU(ctx context.Context, t Target) Result {
	display := t.Check.Server.Host
	if t.Check.URL != nil {
		display = t.Check.Target
	}
	return measure(ctx, func(res *Result, rec *recorder) (string, error) {
		if t.Check.MTU.Mode == config.MTUModeHTTP {
			return doMTUHTTP(ctx, t, res, rec)
		}
		return doMTUICMP(ctx, t, res, rec)
	}, func(reason string) string { return display + ": " + reason })
}

func doMTUICMP(ctx context.Context, t Target, res *Result, rec *recorder) (string, error) {
	o := t.Check.MTU
	addr, err := icmpAddress(ctx, t, o.IPVersion, rec)
	if err != nil {
		return "", err
	}
	res.Peer = netip.AddrPortFrom(addr, 0)
	r, err := icmp.PathMTU(ctx, addr, icmp.MTUOptions{Ladder: o.Ladder, Max: o.MaxMTU, Tries: o.Tries, Wait: o.Wait, TTL: o.TTL})
	st := &PathMTUStats{Mode: config.MTUModeICMP, MTU: r.PathMTU, Limit: string(r.Limit), NextHop: r.NextHopMTU, CutShort: r.CutShort}
	for _, s := range r.Tried {
		st.Tried = append(st.Tried, sizeOutcome(s))
	}
	res.PathMTU = st
	if err != nil {
		st.MTU = 0 // a search cut short found nothing it can vouch for
		return "", icmpFailure(err)
	}
	line := fmt.Sprintf("%s: path MTU %d bytes (%s)", addr, r.PathMTU, mtuBound(r))
	switch {
	case r.BlackHole:
		return "", failf(ErrBlackHole, "black hole: packets above %d bytes vanish without \"fragmentation needed\"%s", r.PathMTU, cutShort(r))
	case o.MinMTU > 0 && r.PathMTU < o.MinMTU:
		return "", failf(ErrMTUBelowMin, "path MTU %d bytes (%s), below min_mtu %d", r.PathMTU, mtuBound(r), o.MinMTU)
	}
	return line, nil
}

// cutShort says which sizes a search stopped by its deadline left untried.
func cutShort(r icmp.MTUResult) string {
	switch {
	case !r.CutShort:
		return ""
	case r.FirstFailed > r.PathMTU+1:
		return fmt.Sprintf(" (the timeout cut the search short: %d to %d bytes untried)", r.PathMTU+1, r.FirstFailed-1)
	}
	return " (the timeout cut the search short)"
}

// mtuBound says what bounded the search.
func mtuBound(r icmp.MTUResult) string {
	switch r.Limit {
	case icmp.FragNeeded:
		return fmt.Sprintf("fragmentation needed from %s, next-hop MTU %d", r.From, r.NextHopMTU) + cutShort(r)
	case icmp.LocalLimit:
		return fmt.Sprintf("local interface MTU %d", r.NextHopMTU) + cutShort(r)
	case icmp.Lost:
		return "larger packets lost" + cutShort(r)
	}
	if r.CutShort {
		return "larger sizes untried: the timeout cut the search short"
	}
	return "max_mtu reached"
}

func sizeOutcome(s icmp.SizeResult) string {
	out := strconv.Itoa(s.Size) + " " + string(s.Outcome)
	if s.MTU > 0 {
		out += " " + strconv.Itoa(s.MTU)
	}
	return out
}

func doMTUHTTP(ctx context.Context, t Target, res *Result, _ *recorder) (string, error) {
	o := t.Check.MTU
	var cfg *tls.Config
	if t.Check.UsesTLS() {
		var err error
		if cfg, err = tlsConfig(t.Check.TLS, ""); err != nil {
			return "", err
		}
	}
	client, _ := newHTTPClient(ctx, t, cfg)
	r, err := icmp.HTTPPathSearch(ctx, icmp.HTTPOptions{
		Client: client, URL: t.Check.Target, Sizes: o.Sizes, Timeout: o.FetchTimeout, Tries: o.Tries,
		Request: func(req *http.Request) {
			if t.Propagator != nil {
				t.Propagator.Inject(req.Context(), propagation.HeaderCarrier(req.Header))
			}
		},
	})
	st := &PathMTUStats{Mode: config.MTUModeHTTP, Largest: r.Largest}
	if r.Stalled {
		st.Limit = "stalled"
	}
	for _, s := range r.Tried {
		out := strconv.Itoa(s.Size) + " passed"
		if !s.Passed {
			out = fmt.Sprintf("%d failed after %d bytes", s.Size, s.Received)
		}
		st.Tried = append(st.Tried, out)
	}
	res.PathMTU = st
	if err != nil {
		return "", err
	}
	line := fmt.Sprintf("%s: largest whole response %d bytes", t.Check.Target, r.Largest)
	if r.FirstFailed == 0 {
		return line + " (every size passed)", nil
	}
	last := r.Tried[len(r.Tried)-1]
	switch {
	case r.Stalled:
		return "", failf(ErrBlackHole, "black hole: a %d-byte response stalled after %d bytes; the largest whole response was %d bytes",
			r.FirstFailed, last.Received, r.Largest)
	case last.Status != 0:
		// The server refused the size (its --max-size): a limit of the
		// server, not of the path.
		return fmt.Sprintf("%s (%d answered status %d)", line, r.FirstFailed, last.Status), nil
	}
	return "", fmt.Errorf("%d-byte response after %d passed: %w", r.FirstFailed, r.Largest, last.Err)
}
