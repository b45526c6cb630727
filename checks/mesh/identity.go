package mesh

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Identity is who this sidecar is in the mesh.
type Identity struct {
	// Addrs are this sidecar's own addresses, preferred first; the first one
	// found in a DNS answer is the member that is self.
	Addrs []netip.Addr
	// Node is the node name when the downward API provides it; it only
	// labels probes and logs, since other members cannot learn it from DNS.
	Node string
}

// ErrNoIdentity is returned when neither the environment nor the interfaces
// give a usable address.
var ErrNoIdentity = errors.New("no address for the mesh identity")

// Environment variables the downward API fills (status.podIP, status.podIPs,
// spec.nodeName).
const (
	EnvPodIP    = "POD_IP"
	EnvPodIPs   = "POD_IPS"
	EnvNodeName = "NODE_NAME"
)

// IdentityFrom reads POD_IP, POD_IPS (comma-separated) and NODE_NAME through
// getenv; when neither address variable is set it falls back to the
// interface addresses from ifaddrs (global unicast ones first, loopback
// last, link-local never). A malformed variable is an error, not a fallback:
// a sidecar that guesses the wrong address probes the wrong peers.
func IdentityFrom(getenv func(string) string, ifaddrs func() ([]net.Addr, error)) (Identity, error) {
	id := Identity{Node: strings.TrimSpace(getenv(EnvNodeName))}
	for _, name := range []string{EnvPodIP, EnvPodIPs} {
		for _, f := range strings.Split(getenv(name), ",") {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			a, err := netip.ParseAddr(f)
			if err != nil {
				return Identity{}, fmt.Errorf("%s: %w", name, err)
			}
			if a = a.Unmap(); !slices.Contains(id.Addrs, a) {
				id.Addrs = append(id.Addrs, a)
			}
		}
	}
	if len(id.Addrs) > 0 {
		return id, nil
	}
	if ifaddrs == nil {
		return Identity{}, ErrNoIdentity
	}
	list, err := ifaddrs()
	if err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	var global, loop []netip.Addr
	for _, na := range list {
		p, err := netip.ParsePrefix(na.String())
		if err != nil {
			continue // not an IP interface address
		}
		switch a := p.Addr().Unmap(); {
		case a.IsLoopback():
			loop = append(loop, a)
		case a.IsGlobalUnicast():
			global = append(global, a)
		}
	}
	id.Addrs = append(global, loop...)
	if len(id.Addrs) == 0 {
		return Identity{}, ErrNoIdentity
	}
	return id, nil
}

// Self picks the member that is this sidecar: the first own address found in
// members, else the first own address (then the sidecar is not counted).
func (id Identity) Self(members []netip.Addr) netip.Addr {
	for _, a := range id.Addrs {
		for _, m := range members {
			if m.Unmap() == a {
				return a
			}
		}
	}
	if len(id.Addrs) == 0 {
		return netip.Addr{}
	}
	return id.Addrs[0]
}

// String names the sidecar in probe headers and logs: "node/address", or the
// address alone without a node name.
func (id Identity) String() string {
	a := ""
	if len(id.Addrs) > 0 {
		a = id.Addrs[0].String()
	}
	if id.Node == "" {
		return a
	}
	return id.Node + "/" + a
}
