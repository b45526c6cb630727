package icmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	xicmp "golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// SocketKind says which kind of ICMP socket a run used.
type SocketKind string

// Socket kinds, as the icmp.socket span attribute reports them.
const (
	// Datagram is the unprivileged ICMP socket (SOCK_DGRAM/IPPROTO_ICMP),
	// allowed when net.ipv4.ping_group_range covers the process's group.
	Datagram SocketKind = "datagram"
	// Raw is a raw ICMP socket, which needs CAP_NET_RAW.
	Raw SocketKind = "raw"
)

// Protocol numbers for ParseMessage.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

// Header sizes that turn an MTU into an echo payload length.
const (
	ipv4Header = 20
	ipv6Header = 40
	echoHeader = 8
)

// socketOptions are the per-socket settings of a run.
type socketOptions struct {
	// probe sets DF (IPv6: no local fragmentation) and makes the kernel send
	// at the interface MTU whatever path MTU it has cached, so each packet
	// tests the path afresh.
	probe bool
	ttl   int // 0 keeps the system default
}

// conn is one open ICMP socket aimed at one destination. It is used by one
// goroutine at a time.
type conn struct {
	pc   net.PacketConn // keeps the fd registered with the runtime poller
	rc   syscall.RawConn
	v6   bool
	kind SocketKind
	id   int // echo identifier: the kernel's for datagram sockets, ours for raw
	dst  netip.Addr
	sa   unix.Sockaddr
	buf  []byte
	oob  []byte
	// pending holds errors drained from the error queue while sending,
	// returned by recv before anything new.
	pending []event
}

// eventKind tells what recv returned.
type eventKind int

const (
	evReply      eventKind = iota + 1 // an echo reply of ours
	evICMPError                       // an ICMP error about one of our packets
	evLocalError                      // the kernel refused to send (EMSGSIZE)
)

// event is one thing read from the socket.
type event struct {
	kind eventKind
	seq  int // -1 when the packet it is about is unknown
	data []byte
	from netip.Addr
	at   time.Time
	// ICMP errors: the kernel's errno, the ICMP type and code, and info,
	// which carries the next-hop MTU of "fragmentation needed" / "packet too
	// big" and the interface MTU of a local EMSGSIZE.
	errno syscall.Errno
	typ   uint8
	code  uint8
	info  uint32
}

// openConn opens an ICMP socket for dst: the unprivileged datagram kind
// first, a raw one when that is refused. When both are refused it returns a
// *PermissionError naming the fix.
func openConn(dst netip.Addr, o socketOptions, rawID int) (*conn, error) {
	dst = dst.Unmap()
	c := &conn{v6: dst.Is6(), dst: dst, buf: make([]byte, 65536), oob: make([]byte, 512)}
	family, proto := unix.AF_INET, protoICMP
	if c.v6 {
		family, proto = unix.AF_INET6, protoICMPv6
	}
	fd, dgramErr := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	c.kind = Datagram
	if dgramErr != nil {
		var rawErr error
		fd, rawErr = unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if rawErr != nil {
			if isPermission(dgramErr) && isPermission(rawErr) {
				return nil, newPermissionError(dgramErr, rawErr)
			}
			return nil, fmt.Errorf("icmp: opening a socket: datagram: %w; raw: %w", dgramErr, rawErr)
		}
		c.kind = Raw
		c.id = rawID & 0xffff
	}
	if err := c.setup(fd, o); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	pc, err := net.FilePacketConn(f)
	_ = f.Close() // FilePacketConn holds its own duplicate
	if err != nil {
		return nil, fmt.Errorf("icmp: socket: %w", err)
	}
	c.pc = pc
	sc, ok := pc.(syscall.Conn)
	if !ok {
		_ = pc.Close()
		return nil, fmt.Errorf("icmp: socket of type %T has no raw access", pc)
	}
	if c.rc, err = sc.SyscallConn(); err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("icmp: socket: %w", err)
	}
	if c.kind == Raw {
		if err := c.filterRaw(); err != nil {
			_ = pc.Close()
			return nil, err
		}
	}
	return c, nil
}

// filterRaw makes the kernel hand a raw socket only echo replies: it would
// otherwise wake for every ICMP packet the host receives. Errors about our
// packets still reach the error queue, which the filter does not touch.
func (c *conn) filterRaw() error {
	var err error
	if c.v6 {
		var f ipv6.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv6.ICMPTypeEchoReply)
		err = ipv6.NewPacketConn(c.pc).SetICMPFilter(&f)
	} else {
		var f ipv4.ICMPFilter
		f.SetAll(true)
		f.Accept(ipv4.ICMPTypeEchoReply)
		err = ipv4.NewPacketConn(c.pc).SetICMPFilter(&f)
	}
	if err != nil {
		return fmt.Errorf("icmp: filtering the raw socket: %w", err)
	}
	return nil
}

// setup sets the socket options and, for a datagram socket, binds it so the
// kernel assigns the echo identifier its replies are matched by.
func (c *conn) setup(fd int, o socketOptions) error {
	type opt struct{ level, name, value int }
	var opts []opt
	if c.v6 {
		pmtu, dontfrag := unix.IPV6_PMTUDISC_DONT, 0
		if o.probe {
			pmtu, dontfrag = unix.IPV6_PMTUDISC_PROBE, 1
		}
		opts = []opt{
			{unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1},
			{unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, pmtu},
			{unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, dontfrag},
		}
		if o.ttl > 0 {
			opts = append(opts, opt{unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, o.ttl})
		}
	} else {
		// IP_PMTUDISC_DONT lets large echoes fragment; PROBE sets DF.
		pmtu := unix.IP_PMTUDISC_DONT
		if o.probe {
			pmtu = unix.IP_PMTUDISC_PROBE
		}
		opts = []opt{
			{unix.IPPROTO_IP, unix.IP_RECVERR, 1},
			{unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu},
		}
		if o.ttl > 0 {
			opts = append(opts, opt{unix.IPPROTO_IP, unix.IP_TTL, o.ttl})
		}
	}
	for _, op := range opts {
		if err := unix.SetsockoptInt(fd, op.level, op.name, op.value); err != nil {
			return fmt.Errorf("icmp: setsockopt(%d, %d): %w", op.level, op.name, err)
		}
	}
	if c.v6 {
		c.sa = &unix.SockaddrInet6{Addr: c.dst.As16()}
	} else {
		c.sa = &unix.SockaddrInet4{Addr: c.dst.As4()}
	}
	if c.kind != Datagram {
		return nil
	}
	var wildcard unix.Sockaddr = &unix.SockaddrInet4{}
	if c.v6 {
		wildcard = &unix.SockaddrInet6{}
	}
	if err := unix.Bind(fd, wildcard); err != nil {
		return fmt.Errorf("icmp: bind: %w", err)
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("icmp: getsockname: %w", err)
	}
	switch sa := local.(type) {
	case *unix.SockaddrInet4:
		c.id = sa.Port
	case *unix.SockaddrInet6:
		c.id = sa.Port
	}
	return nil
}

func (c *conn) close() error { return c.pc.Close() }

// headerLen is the IP header size for this socket's family.
func (c *conn) headerLen() int {
	if c.v6 {
		return ipv6Header
	}
	return ipv4Header
}

// send writes one echo request. A local EMSGSIZE comes back as an
// evLocalError event with the interface MTU in info (0 when the kernel did
// not say), not as an error.
func (c *conn) send(seq int, payload []byte) (*event, error) {
	var typ xicmp.Type = ipv4.ICMPTypeEcho
	if c.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	m := xicmp.Message{Type: typ, Body: &xicmp.Echo{ID: c.id, Seq: seq & 0xffff, Data: payload}}
	// The kernel fills the ICMPv6 checksum (and the identifier of datagram
	// sockets) itself.
	b, err := m.Marshal(nil)
	if err != nil {
		return nil, fmt.Errorf("icmp: marshal: %w", err)
	}
	var sendErr error
	err = c.rc.Write(func(fd uintptr) bool {
		// An ICMP error that arrived since the last read is pending on the
		// socket and would fail this send; its details stay in the error
		// queue for recv.
		_, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		sendErr = unix.Sendto(int(fd), b, 0, c.sa)
		return sendErr != unix.EAGAIN
	})
	if err != nil {
		return nil, fmt.Errorf("icmp: send: %w", err)
	}
	if sendErr == nil {
		return nil, nil
	}
	if sendErr == unix.EMSGSIZE {
		return c.localError(seq), nil
	}
	if sendErr == unix.EHOSTUNREACH || sendErr == unix.ENETUNREACH {
		return nil, fmt.Errorf("%w: sending to %s: %w", ErrUnreachable, c.dst, sendErr)
	}
	return nil, fmt.Errorf("icmp: send to %s: %w", c.dst, sendErr)
}

// localError drains the error queue after a send failed with EMSGSIZE and
// returns the local error with the MTU the kernel put there; remote errors
// found on the way are kept for recv.
func (c *conn) localError(seq int) *event {
	local := &event{kind: evLocalError, seq: seq, errno: unix.EMSGSIZE, at: time.Now()}
	_ = c.rc.Read(func(fd uintptr) bool {
		for {
			ev, ok, err := c.readErrQueue(int(fd))
			if err != nil || !ok {
				return true
			}
			if ev.kind == evLocalError {
				local.info = ev.info
				continue
			}
			c.pending = append(c.pending, ev)
		}
	})
	return local
}

// recv returns the next event for this socket, or an error once deadline
// passes (os.ErrDeadlineExceeded) or the socket is closed.
func (c *conn) recv(deadline time.Time) (event, error) {
	if len(c.pending) > 0 {
		ev := c.pending[0]
		c.pending = c.pending[1:]
		return ev, nil
	}
	if err := c.pc.SetReadDeadline(deadline); err != nil {
		return event{}, err
	}
	for {
		var (
			ev    event
			ok    bool
			opErr error
		)
		err := c.rc.Read(func(fd uintptr) bool {
			n, _, _, from, err := unix.Recvmsg(int(fd), c.buf, nil, unix.MSG_DONTWAIT)
			if err == nil {
				ev, ok = c.parseReply(c.buf[:n], from)
				return true
			}
			// EAGAIN, or a pending ICMP error (sk_err) failing the read
			// once: the details are in the error queue.
			ev, ok, opErr = c.readErrQueue(int(fd))
			return ok || opErr != nil
		})
		if err != nil {
			return event{}, err
		}
		if opErr != nil {
			return event{}, fmt.Errorf("icmp: receive: %w", opErr)
		}
		if ok {
			return ev, nil
		}
	}
}

// parseReply decodes a packet from the normal queue; ok is false for
// packets that are not an echo reply to this socket's requests (a raw
// socket sees every ICMP packet the host receives).
func (c *conn) parseReply(b []byte, from unix.Sockaddr) (event, bool) {
	at := time.Now()
	proto := protoICMP
	if c.v6 {
		proto = protoICMPv6
	} else if c.kind == Raw {
		// Raw IPv4 sockets deliver the IP header too.
		if len(b) < ipv4Header {
			return event{}, false
		}
		hl := int(b[0]&0x0f) * 4
		if hl < ipv4Header || len(b) < hl {
			return event{}, false
		}
		b = b[hl:]
	}
	m, err := xicmp.ParseMessage(proto, b)
	if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
		return event{}, false
	}
	echo, isEcho := m.Body.(*xicmp.Echo)
	src := sockaddrAddr(from)
	if !isEcho || echo.ID != c.id || src != c.dst {
		return event{}, false
	}
	return event{kind: evReply, seq: echo.Seq, data: echo.Data, from: src, at: at}, true
}

// readErrQueue reads one entry of the socket's error queue (IP_RECVERR);
// ok is false when the queue is empty.
func (c *conn) readErrQueue(fd int) (event, bool, error) {
	n, oobn, _, _, err := unix.Recvmsg(fd, c.buf, c.oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
	if err == unix.EAGAIN {
		return event{}, false, nil
	}
	if err != nil {
		return event{}, false, err
	}
	msgs, err := unix.ParseSocketControlMessage(c.oob[:oobn])
	if err != nil {
		return event{}, false, fmt.Errorf("control message: %w", err)
	}
	for _, m := range msgs {
		isErr := (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR)
		// struct sock_extended_err: errno u32, origin, type, code, pad u8,
		// info u32, data u32; then the offender's sockaddr.
		const eeSize = 16
		d := m.Data
		if !isErr || len(d) < eeSize {
			continue
		}
		origin := d[4]
		ev := event{
			kind: evICMPError, seq: -1, errno: syscall.Errno(binary.NativeEndian.Uint32(d[0:4])),
			typ: d[5], code: d[6], info: binary.NativeEndian.Uint32(d[8:12]),
			at: time.Now(), from: offender(d[eeSize:]),
		}
		if origin == unix.SO_EE_ORIGIN_LOCAL {
			ev.kind = evLocalError
		} else {
			ev.seq = c.quotedSeq(c.buf[:n])
		}
		return ev, true, nil
	}
	// An entry without an extended error says nothing usable; skip it.
	return event{}, false, nil
}

// quotedSeq returns the sequence number of the echo request an ICMP error
// quotes, or -1 when it is not one of this socket's.
func (c *conn) quotedSeq(b []byte) int {
	// The error queue holds the quoted packet from its ICMP header on:
	// type, code, checksum, identifier, sequence.
	if len(b) < echoHeader {
		return -1
	}
	if (!c.v6 && b[0] != byte(ipv4.ICMPTypeEcho)) || (c.v6 && b[0] != byte(ipv6.ICMPTypeEchoRequest)) {
		return -1
	}
	if int(binary.BigEndian.Uint16(b[4:6])) != c.id {
		return -1
	}
	return int(binary.BigEndian.Uint16(b[6:8]))
}

// offender decodes the sockaddr that follows a sock_extended_err: the
// address of the router or host that sent the ICMP error.
func offender(b []byte) netip.Addr {
	if len(b) < 2 {
		return netip.Addr{}
	}
	switch binary.NativeEndian.Uint16(b[0:2]) {
	case unix.AF_INET:
		if len(b) >= 8 {
			return netip.AddrFrom4([4]byte(b[4:8]))
		}
	case unix.AF_INET6:
		if len(b) >= 24 {
			return netip.AddrFrom16([16]byte(b[8:24]))
		}
	}
	return netip.Addr{}
}

func sockaddrAddr(sa unix.Sockaddr) netip.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap()
	}
	return netip.Addr{}
}

// ErrPermission is wrapped by every failure to open either kind of ICMP socket.
var ErrPermission = errors.New("no permission to open an ICMP socket")

// PermissionError says why both sockets were refused and what to set.
type PermissionError struct {
	Datagram, Raw error
	GroupRange    string // net.ipv4.ping_group_range as this process sees it
	GID           int    // the process's effective group
}

func newPermissionError(dgram, raw error) *PermissionError {
	rng := "unknown"
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range"); err == nil {
		rng = strings.Join(strings.Fields(string(b)), " ")
	}
	return &PermissionError{Datagram: dgram, Raw: raw, GroupRange: rng, GID: os.Getegid()}
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("icmp: no permission to open an ICMP socket: the unprivileged datagram socket was refused (%v: "+
		"sysctl net.ipv4.ping_group_range is %q and does not include group %d) and a raw socket needs CAP_NET_RAW (%v); "+
		"fix: set the sysctl net.ipv4.ping_group_range to a range that includes group %d, e.g. \"0 2147483647\", "+
		"or grant the capability CAP_NET_RAW", e.Datagram, e.GroupRange, e.GID, e.Raw, e.GID)
}

// Is makes errors.Is(err, ErrPermission) true.
func (e *PermissionError) Is(target error) bool { return target == ErrPermission }

func isPermission(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)
}
