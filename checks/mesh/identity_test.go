package mesh

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func ifaddrs(list ...string) func() ([]net.Addr, error) {
	return func() ([]net.Addr, error) {
		var out []net.Addr
		for _, s := range list {
			ip, n, err := net.ParseCIDR(s)
			if err != nil {
				return nil, err
			}
			n.IP = ip
			out = append(out, n)
		}
		return out, nil
	}
}

func addrList(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func TestIdentityFromEnv(t *testing.T) {
	id, err := IdentityFrom(env(map[string]string{"POD_IP": "10.1.2.3", "POD_IPS": "10.1.2.3, fd00::7", "NODE_NAME": "node-a"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(id.Addrs, addrList("10.1.2.3", "fd00::7")) || id.Node != "node-a" {
		t.Fatalf("identity %+v", id)
	}
	if id.String() != "node-a/10.1.2.3" {
		t.Fatalf("String() = %q", id.String())
	}
	if _, err := IdentityFrom(env(map[string]string{"POD_IP": "10.1.2"}), ifaddrs("10.9.9.9/24")); err == nil || !strings.Contains(err.Error(), "POD_IP") {
		t.Fatalf("malformed POD_IP: err %v, want one naming POD_IP", err)
	}
}

func TestIdentityFromInterfaces(t *testing.T) {
	id, err := IdentityFrom(env(nil), ifaddrs("127.0.0.1/8", "fe80::1/64", "10.4.0.9/16", "::1/128", "fd00::2/64"))
	if err != nil {
		t.Fatal(err)
	}
	if want := addrList("10.4.0.9", "fd00::2", "127.0.0.1", "::1"); !slices.Equal(id.Addrs, want) {
		t.Fatalf("addrs %v, want %v (global first, loopback last, no link-local)", id.Addrs, want)
	}
	if id.String() != "10.4.0.9" {
		t.Fatalf("String() = %q", id.String())
	}
	if _, err := IdentityFrom(env(nil), ifaddrs("fe80::1/64")); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("only link-local: err %v, want ErrNoIdentity", err)
	}
	if _, err := IdentityFrom(env(nil), func() ([]net.Addr, error) { return nil, errors.New("boom") }); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("interface error: err %v, want ErrNoIdentity", err)
	}
}

func TestIdentitySelf(t *testing.T) {
	id := Identity{Addrs: addrList("10.0.0.9", "10.0.0.5")}
	if got := id.Self(addrList("10.0.0.1", "10.0.0.5", "10.0.0.9")); got != netip.MustParseAddr("10.0.0.9") {
		t.Fatalf("self %v, want the preferred address found in the answer", got)
	}
	if got := id.Self(addrList("10.0.0.1", "::ffff:10.0.0.5")); got != netip.MustParseAddr("10.0.0.5") {
		t.Fatalf("self %v, want 10.0.0.5 (mapped form in the answer)", got)
	}
	if got := id.Self(addrList("10.0.0.1")); got != netip.MustParseAddr("10.0.0.9") {
		t.Fatalf("self %v, want the first own address when none is in the answer", got)
	}
}
