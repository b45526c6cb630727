package checks

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// listenSamePort listens on port P of every address, for one free P.
func listenSamePort(t *testing.T, ips []netip.Addr) (int, []net.Listener) {
	t.Helper()
	for range 10 {
		first, err := net.Listen("tcp", netip.AddrPortFrom(ips[0], 0).String())
		if err != nil {
			t.Fatal(err)
		}
		port := first.Addr().(*net.TCPAddr).Port
		lns := []net.Listener{first}
		for _, a := range ips[1:] {
			ln, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(port)).String())
			if err != nil {
				break // taken on this address: try another port
			}
			lns = append(lns, ln)
		}
		if len(lns) == len(ips) {
			return port, lns
		}
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	t.Fatal("no port free on every member address")
	return 0, nil
}

// TestMeshMatrixFromView: four sidecars in a ring mesh with k=1 each probe
// one peer, yet every page draws all four members it sees in its view, and
// names its ring watcher with what that watcher reports of it.
func TestMeshMatrixFromView(t *testing.T) {
	const name = "peers.heartbeat.test"
	ips, strs := loopbackMembers(4)
	d := startPeerDNS(t, name, strs...)
	port, lns := listenSamePort(t, ips)
	plan := mesh.Plan{Mode: mesh.ModeRing, K: 1}
	var pages []http.Handler
	for i, ip := range ips {
		h := newHarness(t, func(s *Settings) { s.MeshIdentity = mesh.Identity{Addrs: []netip.Addr{ip}} }, nil)
		h.r.resolver = d.resolver()
		c := schedCheck("ring", 50*time.Millisecond)
		c.Type, c.Target, c.Timeout, c.Peers = config.TypeHTTP, "http://"+name+":"+strconv.Itoa(port)+"/heartbeat/1", time.Second, plan
		h.apply(c)
		h.start()
		opts := MeshOptions{Wait: 300 * time.Millisecond, Timeout: time.Minute, MaxAge: 50 * time.Millisecond}
		if i == 1 {
			opts.MaxMembers = 3
		}
		p, err := h.r.StatusPage(PageOptions{Mesh: opts})
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p)
		mux := http.NewServeMux()
		mux.Handle("/status", p)
		mux.HandleFunc("/heartbeat/", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("0")) })
		srv := &http.Server{Handler: mux}
		go func() { _ = srv.Serve(lns[i]) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	member := func(a netip.Addr) string { return netip.AddrPortFrom(a, uint16(port)).String() }
	watcher := mesh.NewView(ips, ips[0]).Watchers(plan)
	if len(watcher) != 1 {
		t.Fatalf("watchers %v, want one with k=1", watcher)
	}
	wantWatcher := fmt.Sprintf(`<code class="watcher up" title="%s → %s: up (check ring`, member(watcher[0]), member(ips[0]))
	var page string
	testkit.WaitFor(t, 15*time.Second, "a 4×4 matrix with every ring pair up, and the ring watcher up", func() (bool, string) {
		_, page = get(t, pages[0], "/status", "text/html")
		return strings.Count(page, `<td class="cell `) == 16 && strings.Count(page, `class="cell up"`) == 4 &&
			strings.Count(page, `class="cell none"`) == 12 && strings.Contains(page, wantWatcher), page
	})
	for _, p := range ips {
		q := mesh.NewView(ips, p).Peers(plan, 0)[0].Addr
		if want := fmt.Sprintf(`<td class="cell up" data-prober="%s" data-target="%s"`, member(p), member(q)); !strings.Contains(page, want) {
			t.Errorf("the matrix lacks %s's cell of its ring peer %s up", member(p), member(q))
		}
	}
	if !strings.Contains(page, "4 members, read in") {
		t.Error("the page does not count the four members")
	}

	_, small := get(t, pages[1], "/status", "text/html")
	if !strings.Contains(small, "3 of 4 members (only the first are fetched") || strings.Count(small, `<td class="cell `) != 9 {
		t.Errorf("a page bounded to 3 members does not say it draws 3 of 4 in a 3×3 matrix:\n%s", small)
	}
	// The bounded page keeps the members nearest it: itself, its ring peer and its watcher.
	v1 := mesh.NewView(ips, ips[1])
	for _, a := range []netip.Addr{ips[1], v1.Peers(plan, 0)[0].Addr, v1.Watchers(plan)[0]} {
		if !strings.Contains(small, `data-member="`+member(a)+`"`) {
			t.Errorf("the bounded page dropped %s, which it is, probes or is probed by", member(a))
		}
	}
}
