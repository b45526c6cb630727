// Package icmp sends ICMP echo bursts and searches path MTUs over IPv4 and
// IPv6, from an unprivileged datagram socket when the kernel allows one and a
// raw socket otherwise; it also measures the largest HTTP response that
// crosses a path, for paths where ICMP is filtered. It knows nothing of check
// configuration or telemetry: probers wrap it.
package icmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"syscall"
	"time"
)

// Defaults of EchoOptions.
const (
	DefaultCount    = 3
	DefaultInterval = 100 * time.Millisecond
	DefaultSize     = 56 // ping(8)'s payload size: 64-byte ICMP messages
	// defaultWait bounds a burst whose context has no deadline.
	defaultWait = time.Second
	// MaxCount keeps sequence numbers unique within a burst.
	MaxCount = 65535
	// MaxSize is the largest payload an IPv4 echo can carry.
	MaxSize = 65535 - ipv4Header - echoHeader
	// MaxPacket is the largest IP packet a path MTU search may try.
	MaxPacket = 65535
)

// Errors a burst or a search fails with; each wraps one of these.
var (
	ErrNoReply      = errors.New("no echo reply")
	ErrUnreachable  = errors.New("destination unreachable")
	ErrTimeExceeded = errors.New("time to live exceeded in transit")
	ErrTooBig       = errors.New("packet too big")
)

// TooBigError is a packet refused by the local interface or by a hop's "fragmentation needed".
type TooBigError struct {
	Size  int        // IP packet size tried
	MTU   int        // the limit reported, 0 when none was
	From  netip.Addr // the hop that reported it; invalid for the local interface
	Local bool
}

func (e *TooBigError) Error() string {
	if e.Local {
		return fmt.Sprintf("%v: %d bytes exceed the local interface MTU %d", ErrTooBig, e.Size, e.MTU)
	}
	return fmt.Sprintf("%v: %d bytes exceed the next-hop MTU %d reported by %s", ErrTooBig, e.Size, e.MTU, e.From)
}

// Unwrap makes errors.Is(err, ErrTooBig) true.
func (e *TooBigError) Unwrap() error { return ErrTooBig }

// EchoOptions shape one burst; zero values take the defaults.
type EchoOptions struct {
	Count    int           // echo requests sent
	Interval time.Duration // spacing between them
	Size     int           // ICMP payload bytes (ping -s)
	// DontFragment sets DF (IPv6: no fragmenting at the source); the kernel
	// then sends at the interface MTU, ignoring its cached path MTU.
	DontFragment bool
	TTL          int // IP TTL / IPv6 hop limit; 0 keeps the system default
}

func (o EchoOptions) withDefaults() EchoOptions {
	if o.Count <= 0 {
		o.Count = DefaultCount
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	return o
}

// EchoResult is what one burst measured.
type EchoResult struct {
	Socket     SocketKind
	Sent       int
	Received   int             // distinct replies; duplicates are not added
	Duplicates int             // extra copies of replies already counted
	RTTs       []time.Duration // one per distinct reply, in arrival order
	Errors     []ICMPError     // ICMP errors that came back for the burst's packets
}

// ICMPError is one ICMP error message about a packet of ours.
type ICMPError struct {
	Seq  int
	From netip.Addr
	Type uint8
	Code uint8
	MTU  int // next-hop MTU of "fragmentation needed" / "packet too big"
	Err  syscall.Errno
}

// Loss is the fraction of sent packets without a reply, 0 when none was sent.
func (r EchoResult) Loss() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 1 - float64(r.Received)/float64(r.Sent)
}

// Stats summarises round-trip times.
type Stats struct {
	Min, Avg, Max, StdDev time.Duration
}

// Stats returns min, mean, max and population standard deviation (ping's mdev) of the RTTs.
func (r EchoResult) Stats() Stats {
	if len(r.RTTs) == 0 {
		return Stats{}
	}
	s := Stats{Min: r.RTTs[0], Max: r.RTTs[0]}
	var sum, sumSq float64
	for _, d := range r.RTTs {
		s.Min, s.Max = min(s.Min, d), max(s.Max, d)
		f := float64(d)
		sum += f
		sumSq += f * f
	}
	n := float64(len(r.RTTs))
	mean := sum / n
	s.Avg = time.Duration(mean)
	s.StdDev = time.Duration(math.Sqrt(max(0, sumSq/n-mean*mean)))
	return s
}

// Echo sends a burst of echo requests to dst and collects the replies until ctx's deadline.
func Echo(ctx context.Context, dst netip.Addr, o EchoOptions) (EchoResult, error) {
	// Replies after the deadline count as lost. A burst fails only when no
	// reply came at all (wrapping ErrNoReply, ErrUnreachable,
	// ErrTimeExceeded or ErrTooBig after what came back instead), when no
	// ICMP socket may be opened (ErrPermission) or when sending fails; the
	// result holds what was measured either way.
	o = o.withDefaults()
	if o.Count > MaxCount {
		return EchoResult{}, fmt.Errorf("icmp: count %d above %d", o.Count, MaxCount)
	}
	if o.Size > MaxSize {
		return EchoResult{}, fmt.Errorf("icmp: size %d above %d", o.Size, MaxSize)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Duration(o.Count)*o.Interval + defaultWait)
	}
	c, err := openConn(dst, socketOptions{probe: o.DontFragment, ttl: o.TTL}, rand.IntN(1<<16))
	if err != nil {
		return EchoResult{}, err
	}
	defer c.close()
	// Cancellation wakes a blocked read; recv re-arms the deadline each call,
	// so the loop also checks ctx itself.
	stop := context.AfterFunc(ctx, func() { _ = c.pc.SetReadDeadline(time.Now()) })
	defer stop()

	b := newBurst(c, o)
	if err := b.run(ctx, deadline); err != nil {
		return b.res, err
	}
	return b.res, b.totalLoss(dst)
}

// burst is the state of one Echo run.
type burst struct {
	c       *conn
	o       EchoOptions
	payload []byte
	sentAt  []time.Time // by sequence number - 1; zero until sent
	replied []bool
	settled int // requests answered by a reply or an ICMP error
	tooBig  *TooBigError
	res     EchoResult
}

func newBurst(c *conn, o EchoOptions) *burst {
	return &burst{
		c: c, o: o, payload: newPayload(o.Size),
		sentAt: make([]time.Time, o.Count), replied: make([]bool, o.Count),
		res: EchoResult{Socket: c.kind},
	}
}

// newPayload is a random nonce (so a late reply to an earlier run that
// reused the identifier is not taken for ours) followed by the payload
// server's pattern.
func newPayload(size int) []byte {
	const pattern = "0123456789ABCDEF"
	p := make([]byte, size)
	for i := range p {
		p[i] = pattern[i%len(pattern)]
	}
	var nonce [8]byte
	for i := range nonce {
		nonce[i] = byte(rand.Uint32())
	}
	copy(p, nonce[:])
	return p
}

// run sends on schedule and reads in between, on one goroutine, until every
// request has been answered, the deadline passes or ctx is done.
func (b *burst) run(ctx context.Context, deadline time.Time) error {
	next := time.Now()
	sent := 0
	for {
		now := time.Now()
		if ctx.Err() != nil || !now.Before(deadline) {
			return nil
		}
		if sent < b.o.Count && !now.Before(next) {
			if err := b.send(sent + 1); err != nil {
				return err
			}
			sent++
			next = next.Add(b.o.Interval)
			continue
		}
		if sent == b.o.Count && b.settled == b.res.Sent {
			return nil
		}
		wake := deadline
		if sent < b.o.Count && next.Before(wake) {
			wake = next
		}
		ev, err := b.c.recv(wake)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return err
		}
		b.handle(ev, deadline)
	}
}

// send sends request seq; one the local interface refuses is not counted
// as sent.
func (b *burst) send(seq int) error {
	local, err := b.c.send(seq, b.payload)
	if err != nil {
		return err
	}
	if local != nil {
		b.tooBig = &TooBigError{Size: b.o.Size + echoHeader + b.c.headerLen(), MTU: int(local.info), Local: true}
		return nil
	}
	b.sentAt[seq-1] = time.Now()
	b.res.Sent++
	return nil
}

func (b *burst) handle(ev event, deadline time.Time) {
	i := ev.seq - 1
	known := i >= 0 && i < len(b.sentAt) && !b.sentAt[i].IsZero()
	switch ev.kind {
	case evReply:
		if !known || ev.at.After(deadline) || !bytes.HasPrefix(ev.data, b.payload[:min(8, len(b.payload))]) {
			return
		}
		if b.replied[i] {
			b.res.Duplicates++
			return
		}
		if !b.errored(ev.seq) {
			b.settled++
		}
		b.replied[i] = true
		b.res.Received++
		b.res.RTTs = append(b.res.RTTs, ev.at.Sub(b.sentAt[i]))
	case evICMPError:
		if known {
			if !b.replied[i] && !b.errored(ev.seq) {
				b.settled++
			}
			b.res.Errors = append(b.res.Errors, icmpError(ev, b.c.v6))
		}
	}
}

// errored reports whether an ICMP error already came back for seq.
func (b *burst) errored(seq int) bool {
	for _, e := range b.res.Errors {
		if e.Seq == seq {
			return true
		}
	}
	return false
}

func icmpError(ev event, v6 bool) ICMPError {
	e := ICMPError{Seq: ev.seq, From: ev.from, Type: ev.typ, Code: ev.code, Err: ev.errno}
	if isTooBig(ev, v6) {
		e.MTU = int(ev.info)
	}
	return e
}

// ICMP types and codes the engine tells apart.
const (
	v4DestUnreach  = 3
	v4FragNeeded   = 4 // code of v4DestUnreach
	v4TimeExceeded = 11
	v6DestUnreach  = 1
	v6PacketTooBig = 2
	v6TimeExceeded = 3
)

func isTooBig(ev event, v6 bool) bool {
	if v6 {
		return ev.typ == v6PacketTooBig
	}
	return ev.typ == v4DestUnreach && ev.code == v4FragNeeded
}

// totalLoss returns nil when a reply came, else the error that best says why
// none did.
func (b *burst) totalLoss(dst netip.Addr) error {
	if b.res.Received > 0 {
		return nil
	}
	if b.tooBig != nil && b.res.Sent == 0 {
		return b.tooBig
	}
	if len(b.res.Errors) > 0 {
		return describe(b.res.Errors[0], b.o.Size+echoHeader+b.c.headerLen(), b.c.v6)
	}
	return fmt.Errorf("%w from %s: %d sent, none answered", ErrNoReply, dst, b.res.Sent)
}

// describe turns an ICMP error into the error a run fails with.
func describe(e ICMPError, size int, v6 bool) error {
	switch {
	case e.MTU > 0 || (v6 && e.Type == v6PacketTooBig) || (!v6 && e.Type == v4DestUnreach && e.Code == v4FragNeeded):
		return &TooBigError{Size: size, MTU: e.MTU, From: e.From}
	case (v6 && e.Type == v6TimeExceeded) || (!v6 && e.Type == v4TimeExceeded):
		return fmt.Errorf("%w: reported by %s", ErrTimeExceeded, e.From)
	default:
		return fmt.Errorf("%w: %v (ICMP type %d code %d from %s)", ErrUnreachable, e.Err, e.Type, e.Code, e.From)
	}
}
