package checks

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

// maxMeshMembers bounds the members a mesh check takes from one answer;
// a DNS message (64 KiB) holds about 4,000 A records, so it is never hit
// through DNS, only by a resolver gone wrong.
const maxMeshMembers = 10000

// peersResolver is the resolver for member lookups: the system one, or a
// Go resolver that sends every query to server.
func peersResolver(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, server)
	}}
}

// runMesh resolves the members of c's headless name, places them on the
// ring, and probes this sidecar's ring peers and the epoch's sweep peers,
// spread over the interval, each in its own concurrency slot, under one
// run span. When the lookup fails it records that and probes the peers of
// the last view: a DNS outage should not blind the mesh.
func (r *Runner) runMesh(ctx context.Context, c *check) {
	start := time.Now()
	ctx, span := r.tracer.Start(ctx, c.spanName, trace.WithTimestamp(start))
	if span.IsRecording() {
		span.SetAttributes(c.spanAttrs()...)
	}
	rctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	addrs, err := r.resolve(rctx, c, maxMeshMembers)
	cancel()
	r.release() // peer probes take their own slots
	if ctx.Err() != nil {
		span.End()
		return
	}
	res := resolution(c, start, time.Now(), len(addrs), err)
	r.record(ctx, c.main, res)
	if span.IsRecording() {
		r.phaseSpans(ctx, res.Phases)
	}
	view := c.view.Load()
	if err == nil {
		ips := make([]netip.Addr, len(addrs))
		for i, a := range addrs {
			ips[i] = a.Addr()
		}
		view = mesh.NewRing(ips).View(r.self.Self(ips))
		c.view.Store(view)
	} else {
		span.SetStatus(codes.Error, res.Reason)
	}
	if view == nil {
		span.End()
		return
	}
	epoch := mesh.EpochAt(start, c.cfg.Peers.Epoch)
	peers := view.Peers(c.cfg.Peers, epoch)
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("heartbeat.mesh.members", view.Members()),
			attribute.Int64("heartbeat.mesh.view.hash", int64(view.Hash())),
			attrMeshEpoch.Int64(epoch), attribute.Bool("heartbeat.mesh.counted", view.Counted()))
	}
	if failed := r.probePeers(ctx, c, peers, epoch); failed > 0 && err == nil {
		span.SetStatus(codes.Error, fmt.Sprintf("%d of %d peers failed", failed, len(peers)))
	}
	span.End()
}

// resolution is the result recorded on a mesh check's main series.
func resolution(c *check, start, end time.Time, n int, err error) probe.Result {
	res := probe.Result{Success: err == nil, Start: start, Duration: end.Sub(start),
		Phases: []probe.PhaseTiming{{Name: probe.PhaseDNS, Start: start, End: end}}}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		res.ErrorType, res.Reason = probe.ErrTimeout, err.Error()
	case err != nil:
		res.ErrorType, res.Reason = probe.ErrDNS, err.Error()
	default:
		res.Message = fmt.Sprintf("%s: %d member%s", c.display, n, plural(n))
	}
	return res
}

// probePeers probes every peer once, the starts spread evenly over the part
// of the interval that leaves the last probe time to finish before the next
// run, with a random phase per run; it returns how many failed.
func (r *Runner) probePeers(ctx context.Context, c *check, peers []mesh.Peer, epoch int64) int64 {
	var ring, sweep []netip.AddrPort
	for _, p := range peers {
		if p.Role == mesh.RoleRing {
			ring = append(ring, netip.AddrPortFrom(p.Addr, uint16(c.cfg.Server.Port)))
		} else {
			sweep = append(sweep, netip.AddrPortFrom(p.Addr, uint16(c.cfg.Server.Port)))
		}
	}
	ringSeries := c.addressSeries(ring)
	c.sweepLast.begin(epoch, sweep)
	window := time.Duration(float64(c.cfg.Interval)*(1-2*c.cfg.Jitter)) - c.cfg.Timeout
	if r.quiet {
		window = 0 // a one-off run (heartbeat check) should not wait
	}
	offsets := mesh.Spread(len(peers), window, rand.Float64())
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	for i, p := range peers {
		t := probe.Target{Check: c.cfg, Address: netip.AddrPortFrom(p.Addr, uint16(c.cfg.Server.Port)), MeshFrom: r.from, Resolver: r.resolver}
		s, extra := c.sweep, []attribute.KeyValue{attrMeshRole.String(p.Role.String()), attrMeshEpoch.Int64(epoch)}
		if p.Role == mesh.RoleRing { // ring peers come first, in the order of ring
			s, extra = ringSeries[i], []attribute.KeyValue{attrMeshRole.String(p.Role.String()), attrMeshPeer.String(p.Addr.String())}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepCtx(ctx, offsets[i]) {
				return
			}
			release, ok := r.acquireAddressRun(ctx, c)
			if !ok {
				return
			}
			defer release()
			res := r.runSeries(ctx, s, t, extra...)
			if p.Role != mesh.RoleRing {
				c.sweepLast.set(t.Address, res.Success)
			}
			if !res.Success {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	return failed.Load()
}

// sleepCtx waits d or until ctx is done; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// plural is "s" unless n is 1.
func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
