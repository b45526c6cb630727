package icmp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"time"
)

// DefaultLadder returns the IP packet sizes a search tries before its binary search.
func DefaultLadder() []int {
	// IPv6's minimum, common tunnel and overlay MTUs (VXLAN, WireGuard,
	// IPsec, GRE, PPPoE), Ethernet, and jumbo frames.
	return []int{1280, 1400, 1420, 1450, 1480, 1492, 1500, 9000}
}

// Defaults of MTUOptions.
const (
	DefaultTries = 3
	DefaultWait  = 500 * time.Millisecond
)

// Outcome is what happened to the packets of one size.
type Outcome string

// Outcomes, as the span lists them for each size tried.
const (
	// Passed: an echo reply came back.
	Passed Outcome = "passed"
	// Lost: neither a reply nor an ICMP error came back.
	Lost Outcome = "lost"
	// FragNeeded: a hop answered "fragmentation needed" (IPv4) or "packet
	// too big" (IPv6), with its next-hop MTU.
	FragNeeded Outcome = "frag_needed"
	// LocalLimit: the local interface refused the size (EMSGSIZE).
	LocalLimit Outcome = "local_limit"
)

// MTUOptions shape a path MTU search; zero values take the defaults.
type MTUOptions struct {
	// Ladder is the sizes tried in ascending order before the binary search.
	Ladder []int
	// Max is the largest size searched; default the ladder's largest.
	Max int
	// Tries is how many echoes a size gets before it counts as lost.
	Tries int
	// Wait is how long each echo waits for its reply.
	Wait time.Duration
	TTL  int
}

func (o MTUOptions) withDefaults() MTUOptions {
	if len(o.Ladder) == 0 {
		o.Ladder = DefaultLadder()
	}
	o.Ladder = slices.Sorted(slices.Values(o.Ladder))
	if o.Max <= 0 {
		o.Max = o.Ladder[len(o.Ladder)-1]
	}
	if o.Tries <= 0 {
		o.Tries = DefaultTries
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	return o
}

// SizeResult is the outcome of one size.
type SizeResult struct {
	Size    int // IP packet bytes
	Outcome Outcome
	MTU     int        // the limit reported with FragNeeded and LocalLimit
	From    netip.Addr // the hop that reported FragNeeded
}

// MTUResult is what a search found.
type MTUResult struct {
	Socket SocketKind
	// PathMTU is the largest packet, in bytes, that crossed the path.
	PathMTU int
	// Limit is what the smallest failing size met: FragNeeded, LocalLimit
	// or Lost (a black hole); empty when every size up to Max passed.
	Limit Outcome
	// BlackHole is true when packets above PathMTU vanished without an
	// ICMP error.
	BlackHole bool
	// NextHopMTU and From are the MTU and the hop of the frag-needed or
	// local limit that bounded the search.
	NextHopMTU int
	From       netip.Addr
	// FirstFailed is the smallest size that failed, 0 when none did.
	FirstFailed int
	// CutShort is true when the deadline left no time for the next size:
	// sizes between PathMTU and FirstFailed (or Max) were not tried.
	CutShort bool
	// Tried lists each size probed, in order.
	Tried []SizeResult
}

// PathMTU finds the largest packet that crosses the path to dst, and black holes.
func PathMTU(ctx context.Context, dst netip.Addr, o MTUOptions) (MTUResult, error) {
	// A small echo first, to see the host answers at all; then the ladder up
	// to the first size that fails, then a binary search between the last
	// size that passed and the first that did not. Every echo has DF set
	// through IP_PMTUDISC_PROBE, so the kernel's cached path MTU never
	// answers for the path. A size the local interface refuses bounds the
	// search at the interface MTU; a "fragmentation needed" / "packet too
	// big" bounds it at the next-hop MTU it carries, which is tried next.
	// When the smallest failing size was lost without any ICMP error the
	// path is a black hole: the result says so with the largest size that
	// passed, and no error, so probers choose. It fails with ErrNoReply (or
	// ErrUnreachable, ...) when even the small echo gets no reply, and with
	// ctx's error when the deadline cuts the search short.
	o = o.withDefaults()
	if o.Max > MaxPacket || o.Ladder[len(o.Ladder)-1] > MaxPacket {
		return MTUResult{}, fmt.Errorf("icmp: path MTU search beyond %d bytes", MaxPacket)
	}
	c, err := openConn(dst, socketOptions{probe: true, ttl: o.TTL}, rand.IntN(1<<16))
	if err != nil {
		return MTUResult{}, err
	}
	defer c.close()
	stop := context.AfterFunc(ctx, func() { _ = c.pc.SetReadDeadline(time.Now()) })
	defer stop()
	s := &search{c: c, o: o, nonce: newPayload(8), res: MTUResult{Socket: c.kind}}
	err = s.run(ctx)
	return s.res, err
}

// search is the state of one PathMTU run: lo passed, hi failed (0 while
// nothing has failed), and hint is a reported MTU worth trying next.
type search struct {
	c      *conn
	o      MTUOptions
	nonce  []byte
	seq    int
	lo, hi int
	hint   int
	res    MTUResult
	failed SizeResult // the outcome at hi
}

func (s *search) run(ctx context.Context) error {
	first := s.c.headerLen() + echoHeader + len(s.nonce)
	r, err := s.probe(ctx, first)
	if err != nil {
		return err
	}
	if r.Outcome != Passed {
		return fmt.Errorf("%w from %s to a %d-byte echo", ErrNoReply, s.c.dst, first)
	}
	s.lo = first
	for _, size := range s.o.Ladder {
		if size <= s.lo || size > s.o.Max {
			continue
		}
		if !s.timeLeft(ctx) {
			break
		}
		if err := s.try(ctx, size); err != nil {
			return err
		}
		if s.hi != 0 {
			break
		}
	}
	for s.hi != 0 && s.hi-s.lo > 1 && s.timeLeft(ctx) {
		size := s.lo + (s.hi-s.lo)/2
		if s.hint > s.lo && s.hint < s.hi {
			size, s.hint = s.hint, 0
		}
		if err := s.try(ctx, size); err != nil {
			return err
		}
	}
	s.finish()
	return nil
}

// try probes size and narrows lo/hi by its outcome.
func (s *search) try(ctx context.Context, size int) error {
	r, err := s.probe(ctx, size)
	if err != nil {
		return err
	}
	switch r.Outcome {
	case Passed:
		s.lo = max(s.lo, size)
	case Lost:
		s.fail(size, r)
	case FragNeeded, LocalLimit:
		// Everything above a trustworthy reported limit fails at that hop;
		// a limit at or below a size that passed (some routers send 0) says
		// only that this size failed.
		if r.MTU >= s.lo && r.MTU < size {
			s.fail(r.MTU+1, r)
			s.hint = r.MTU
		} else {
			s.fail(size, r)
		}
	}
	return nil
}

// timeLeft reports whether a size that is lost (every try waiting in vain)
// still fits before ctx's deadline; when it does not, the search ends with
// the bounds it has rather than a timeout, so a short timeout coarsens the
// answer instead of losing it.
func (s *search) timeLeft(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	if ok && time.Until(dl) < time.Duration(s.o.Tries)*s.o.Wait {
		s.res.CutShort = true
		return false
	}
	return true
}

func (s *search) fail(size int, r SizeResult) {
	if s.hi == 0 || size <= s.hi {
		s.hi, s.failed = size, r
	}
}

func (s *search) finish() {
	s.res.PathMTU = s.lo
	if s.hi == 0 {
		return
	}
	s.res.FirstFailed = s.hi
	s.res.Limit = s.failed.Outcome
	s.res.BlackHole = s.failed.Outcome == Lost
	if !s.res.BlackHole {
		s.res.NextHopMTU, s.res.From = s.failed.MTU, s.failed.From
	}
}

// probe sends up to Tries echoes of size bytes, each waiting Wait, and
// returns the first decisive outcome; ICMP errors other than too-big (host
// or network unreachable, TTL exceeded) end the search.
func (s *search) probe(ctx context.Context, size int) (SizeResult, error) {
	r := SizeResult{Size: size, Outcome: Lost}
	payload := make([]byte, size-s.c.headerLen()-echoHeader)
	copy(payload, s.nonce)
	mine := map[int]bool{}
	for range s.o.Tries {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("icmp: path MTU search to %s cut short at %d bytes: %w", s.c.dst, size, err)
		}
		s.seq = (s.seq + 1) & 0xffff
		mine[s.seq] = true
		local, err := s.c.send(s.seq, payload)
		if err != nil {
			return r, err
		}
		if local != nil {
			r.Outcome, r.MTU = LocalLimit, int(local.info)
			break
		}
		done, err := s.await(ctx, &r, mine, time.Now().Add(s.o.Wait))
		if err != nil || done {
			s.res.Tried = append(s.res.Tried, r)
			return r, err
		}
	}
	s.res.Tried = append(s.res.Tried, r)
	return r, nil
}

// await reads until a reply or an error about one of this size's echoes
// (mine) arrives, or until wait passes.
func (s *search) await(ctx context.Context, r *SizeResult, mine map[int]bool, until time.Time) (bool, error) {
	if dl, ok := ctx.Deadline(); ok && dl.Before(until) {
		until = dl
	}
	for {
		ev, err := s.c.recv(until)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if !mine[ev.seq] {
			continue // a late answer about a size already decided
		}
		switch {
		case ev.kind == evReply:
			if len(ev.data) >= len(s.nonce) && string(ev.data[:len(s.nonce)]) == string(s.nonce) {
				r.Outcome = Passed
				return true, nil
			}
		case ev.kind == evICMPError && isTooBig(ev, s.c.v6):
			r.Outcome, r.MTU, r.From = FragNeeded, int(ev.info), ev.from
			return true, nil
		case ev.kind == evICMPError:
			return true, describe(icmpError(ev, s.c.v6), r.Size, s.c.v6)
		}
	}
}
