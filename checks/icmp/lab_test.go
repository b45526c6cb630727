package icmp_test

// Tests against the kernel's own network stack: namespaces, veth pairs with
// real MTUs, a forwarding router and iptables rules (see internal/netlab).
// They skip when not root, and fail under CI=true if the lab cannot be built.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/icmp"
	"github.com/heartbeat-sidecar/heartbeat/internal/netlab"
	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
)

// nobody is the unprivileged identity the datagram-socket tests run as.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// The helper mode: TestMain runs one engine call and prints its outcome as
// JSON when the test binary is started with helperEnv set, so the lab can
// run the engine as another user inside a namespace.
const (
	helperEnv    = "ICMP_LAB_HELPER" // "echo" or "pmtu"
	helperDstEnv = "ICMP_LAB_DST"
)

type helperOutput struct {
	Socket     icmp.SocketKind
	Sent       int
	Received   int
	PathMTU    int
	Limit      icmp.Outcome
	Err        string
	Permission bool
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Getenv(helperDstEnv)))
	}
	os.Exit(m.Run())
}

func runHelper(mode, dst string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out helperOutput
	var err error
	addr := netip.MustParseAddr(dst)
	switch mode {
	case "echo":
		var r icmp.EchoResult
		r, err = icmp.Echo(ctx, addr, icmp.EchoOptions{Count: 3, Interval: time.Millisecond})
		out.Socket, out.Sent, out.Received = r.Socket, r.Sent, r.Received
	case "pmtu":
		var r icmp.MTUResult
		r, err = icmp.PathMTU(ctx, addr, icmp.MTUOptions{Wait: 200 * time.Millisecond})
		out.Socket, out.PathMTU, out.Limit = r.Socket, r.PathMTU, r.Limit
	}
	if err != nil {
		out.Err = err.Error()
		out.Permission = errors.Is(err, icmp.ErrPermission)
	}
	if json.NewEncoder(os.Stdout).Encode(out) != nil {
		return 2
	}
	return 0
}

// inNS runs f with its sockets in ns.
func inNS(t *testing.T, ns *netlab.Namespace, f func()) {
	t.Helper()
	if err := ns.Do(func() error { f(); return nil }); err != nil {
		t.Fatal(err)
	}
}

func pathMTU(t *testing.T, ns *netlab.Namespace, dst netip.Addr, o icmp.MTUOptions) (icmp.MTUResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var res icmp.MTUResult
	var err error
	inNS(t, ns, func() { res, err = icmp.PathMTU(ctx, dst, o) })
	t.Logf("path MTU to %s: %d (limit %s, next hop %d from %v, black hole %v, socket %s); tried %v",
		dst, res.PathMTU, res.Limit, res.NextHopMTU, res.From, res.BlackHole, res.Socket, res.Tried)
	return res, err
}

// TestLabPathMTUFromFragNeeded: prober ↔ router ↔ target with 1500 on the
// first link and 1400 on the second; the search reports 1400 exactly, bounded
// by the router's "fragmentation needed" (IPv4) / "packet too big" (IPv6).
func TestLabPathMTUFromFragNeeded(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400})
	for _, tc := range []struct {
		dst, router netip.Addr
	}{{p.TargetV4, p.RouterV4}, {p.TargetV6, p.RouterV6}} {
		res, err := pathMTU(t, p.Prober, tc.dst, icmp.MTUOptions{})
		if err != nil {
			t.Fatalf("PathMTU(%s): %v", tc.dst, err)
		}
		if res.PathMTU != 1400 || res.Limit != icmp.FragNeeded || res.NextHopMTU != 1400 || res.From != tc.router || res.BlackHole {
			t.Errorf("%s: got MTU %d limit %s next hop %d from %v black hole %v; want 1400 from frag-needed 1400 by %s",
				tc.dst, res.PathMTU, res.Limit, res.NextHopMTU, res.From, res.BlackHole, tc.router)
		}
	}
}

// TestLabPathMTULocalLimit: the prober's own interface is the narrowest, so
// the kernel refuses larger packets (EMSGSIZE) and says its MTU.
func TestLabPathMTULocalLimit(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1450, SecondMTU: 1500})
	for _, dst := range []netip.Addr{p.TargetV4, p.TargetV6} {
		res, err := pathMTU(t, p.Prober, dst, icmp.MTUOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.PathMTU != 1450 || res.Limit != icmp.LocalLimit {
			t.Errorf("%s: got MTU %d limit %s next hop %d; want 1450 from the local limit", dst, res.PathMTU, res.Limit, res.NextHopMTU)
		}
		// An echo burst with DF and a payload too big for the interface
		// fails with the local limit.
		var tooBig *icmp.TooBigError
		_, err = echo(t, p.Prober, dst, icmp.EchoOptions{Size: 1450, DontFragment: true})
		if !errors.As(err, &tooBig) || !tooBig.Local {
			t.Errorf("%s: DF echo larger than the interface: %v; want a local TooBigError", dst, err)
		}
	}
}

// TestLabEchoFragNeeded: a DF echo larger than the narrow hop fails with the
// hop's MTU and address; without DF the same size is fragmented and answered.
func TestLabEchoFragNeeded(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400})
	var tooBig *icmp.TooBigError
	_, err := echo(t, p.Prober, p.TargetV4, icmp.EchoOptions{Size: 1420, DontFragment: true})
	if !errors.As(err, &tooBig) || tooBig.Local || tooBig.MTU != 1400 || tooBig.From != p.RouterV4 {
		t.Errorf("DF echo across the 1400 hop: %v; want next-hop MTU 1400 from %s", err, p.RouterV4)
	}
	res, err := echo(t, p.Prober, p.TargetV4, icmp.EchoOptions{Size: 1420})
	if err != nil || res.Received != icmp.DefaultCount {
		t.Errorf("fragmentable echo: %+v, %v; want every reply", res, err)
	}
}

// echo runs one burst from ns with a 2 s deadline.
func echo(t *testing.T, ns *netlab.Namespace, dst netip.Addr, o icmp.EchoOptions) (icmp.EchoResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var res icmp.EchoResult
	var err error
	inNS(t, ns, func() { res, err = icmp.Echo(ctx, dst, o) })
	return res, err
}

// TestLabBlackHole: the same path, but the router's "fragmentation needed"
// never leaves it, and the target's end of the narrow link says 1500, as an
// overlay's endpoints do: the ICMP search reports a black hole with the
// largest size that passed, and the HTTP mode against a real payload server
// in the target namespace sees large responses stall.
func TestLabBlackHole(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400, TargetMTU: 1500}, "iptables", "ip6tables")
	p.Router.IPTables("-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP")
	p.Router.IP6Tables("-A", "OUTPUT", "-p", "ipv6-icmp", "--icmpv6-type", "packet-too-big", "-j", "DROP")
	for _, dst := range []netip.Addr{p.TargetV4, p.TargetV6} {
		res, err := pathMTU(t, p.Prober, dst, icmp.MTUOptions{Tries: 2, Wait: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("PathMTU(%s): %v", dst, err)
		}
		if !res.BlackHole || res.Limit != icmp.Lost || res.PathMTU != 1400 {
			t.Errorf("%s: black hole %v limit %s MTU %d; want a black hole above 1400", dst, res.BlackHole, res.Limit, res.PathMTU)
		}
	}
	// A timeout too short for the binary search still finds the black hole,
	// with coarser bounds instead of an error.
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	var short icmp.MTUResult
	var err error
	inNS(t, p.Prober, func() {
		short, err = icmp.PathMTU(ctx, p.TargetV4, icmp.MTUOptions{Tries: 2, Wait: 200 * time.Millisecond})
	})
	cancel()
	t.Logf("cut short: %d, first failed %d, tried %v", short.PathMTU, short.FirstFailed, short.Tried)
	if err != nil || !short.BlackHole || !short.CutShort || short.PathMTU != 1400 || short.FirstFailed <= 1401 {
		t.Errorf("search cut short: %+v, %v; want a black hole above 1400 with untried sizes", short, err)
	}

	// The black hole is the router's doing: it made "fragmentation needed"
	// errors and the rule dropped them.
	if n := p.Router.IPTablesCounter("OUTPUT", "--icmp-type 3/4"); n == 0 {
		t.Errorf("no fragmentation-needed was dropped by the router")
	}

	// HTTP mode: small responses cross, full-sized TCP segments vanish.
	addr := p.Target.ServeHeartbeat(testkit.Heartbeat(t), p.TargetV4)
	client := &http.Client{Transport: &http.Transport{DialContext: p.Prober.DialContext, DisableKeepAlives: true}}
	search := func() icmp.HTTPResult {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := icmp.HTTPPathSearch(ctx, icmp.HTTPOptions{Client: client, URL: "http://" + addr, Timeout: time.Second})
		if err != nil {
			t.Fatalf("HTTP path search: %v", err)
		}
		t.Logf("HTTP mode: largest whole response %d bytes, first failed %d (stalled %v)", res.Largest, res.FirstFailed, res.Stalled)
		return res
	}
	res := search()
	if !res.Stalled || res.Largest < 1000 || res.FirstFailed > 1500 {
		t.Errorf("HTTP mode: %+v; want responses of 1000 bytes passing and a stall by 1500", res)
	}
	// Widening the narrow hop lets every size through: the stall was the MTU.
	p.Router.IP("link", "set", "eth1", "mtu", "1500")
	if res := search(); res.FirstFailed != 0 || res.Largest != slices.Max(icmp.DefaultHTTPSizes()) {
		t.Errorf("HTTP mode with the hop widened: %+v; want every size to pass", res)
	}
}

// TestLabLoss: the router drops 20 % of echo requests at random; over 200
// packets the measured loss is 20 ± 8 %, and exactly the packets the rule
// dropped are missing.
func TestLabLoss(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500}, "iptables")
	p.Router.IPTables("-A", "FORWARD", "-p", "icmp", "--icmp-type", "echo-request",
		"-m", "statistic", "--mode", "random", "--probability", "0.2", "-j", "DROP")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var res icmp.EchoResult
	var err error
	inNS(t, p.Prober, func() {
		res, err = icmp.Echo(ctx, p.TargetV4, icmp.EchoOptions{Count: 200, Interval: 2 * time.Millisecond})
	})
	if err != nil {
		t.Fatal(err)
	}
	dropped := p.Router.IPTablesCounter("FORWARD", "statistic")
	st := res.Stats()
	t.Logf("loss %.1f %% (%d of %d answered, %d dropped by the router); rtt min %v avg %v max %v stddev %v",
		100*res.Loss(), res.Received, res.Sent, dropped, st.Min, st.Avg, st.Max, st.StdDev)
	if res.Sent != 200 {
		t.Fatalf("sent %d, want 200", res.Sent)
	}
	if l := res.Loss(); l < 0.12 || l > 0.28 {
		t.Errorf("loss %.3f outside 0.20 ± 0.08", l)
	}
	if res.Sent-res.Received != dropped {
		t.Errorf("%d packets unanswered, the router dropped %d", res.Sent-res.Received, dropped)
	}
	if res.Duplicates != 0 || len(res.RTTs) != res.Received {
		t.Errorf("duplicates %d, %d RTTs for %d replies", res.Duplicates, len(res.RTTs), res.Received)
	}
}

// TestLabDuplicates: the router copies every echo reply back to the prober
// (iptables TEE); each copy is counted as a duplicate, not as a reply. A run
// ends at its last distinct reply, so the last copy may come too late.
func TestLabDuplicates(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500}, "iptables")
	p.Router.IPTables("-t", "mangle", "-A", "POSTROUTING", "-p", "icmp", "--icmp-type", "echo-reply",
		"-j", "TEE", "--gateway", "10.201.1.1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var res icmp.EchoResult
	var err error
	inNS(t, p.Prober, func() {
		res, err = icmp.Echo(ctx, p.TargetV4, icmp.EchoOptions{Count: 5, Interval: 10 * time.Millisecond})
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received != 5 || res.Duplicates < 4 || res.Duplicates > 5 || res.Loss() != 0 {
		t.Errorf("received %d, duplicates %d, loss %v; want 5, 4 or 5, 0", res.Received, res.Duplicates, res.Loss())
	}
}

// TestLabLateReplies: the target's replies leave through a token bucket so
// slow that only the first fits before the deadline; the rest count as lost
// although they do arrive later.
func TestLabLateReplies(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500}, "tc")
	// 1,428-byte replies at 8 kbit/s: one leaves at once (the burst), the
	// next after about 1.4 s; the queue holds them rather than dropping.
	p.Target.TC("qdisc", "add", "dev", "eth0", "root", "tbf", "rate", "8kbit", "burst", "1600", "latency", "30s")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	var res icmp.EchoResult
	var err error
	inNS(t, p.Prober, func() {
		res, err = icmp.Echo(ctx, p.TargetV4, icmp.EchoOptions{Count: 3, Interval: time.Millisecond, Size: 1400})
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 3 || res.Received != 1 {
		t.Errorf("sent %d, received %d; want 3 sent and only the first answered in time", res.Sent, res.Received)
	}
}

// TestLabUnprivileged: as a non-root user with no capabilities, ICMP works
// through the datagram socket when ping_group_range covers the user's group,
// DF included (path MTU 1400 found without privilege); with the kernel's
// default range it fails with the error that names both fixes.
func TestLabUnprivileged(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400}, "setpriv")
	bin := helperBinary(t)

	p.Prober.Sysctl("net.ipv4.ping_group_range", "0 2147483647")
	// The identity and sysctl of the Kubernetes manifests' pod.
	if out := runAs(t, p.Prober, &syscall.Credential{Uid: 65532, Gid: 65532}, bin, "echo", p.TargetV4); out.Err != "" || out.Received != 3 {
		t.Errorf("as the pod's uid/gid 65532: %+v; want 3 replies", out)
	}
	for _, dst := range []netip.Addr{p.TargetV4, p.TargetV6} {
		out := runAsNobody(t, p.Prober, bin, "echo", dst)
		if out.Err != "" || out.Socket != icmp.Datagram || out.Received != 3 {
			t.Errorf("%s with ping_group_range set: %+v; want 3 replies over a datagram socket", dst, out)
		}
		out = runAsNobody(t, p.Prober, bin, "pmtu", dst)
		t.Logf("as uid 65534 without capabilities, %s: path MTU %d (%s) over a %s socket", dst, out.PathMTU, out.Limit, out.Socket)
		if out.Err != "" || out.Socket != icmp.Datagram || out.PathMTU != 1400 || out.Limit != icmp.FragNeeded {
			t.Errorf("%s path MTU unprivileged: %+v; want 1400 from frag-needed over a datagram socket", dst, out)
		}
	}

	p.Prober.Sysctl("net.ipv4.ping_group_range", "1 0")
	out := runAsNobody(t, p.Prober, bin, "echo", p.TargetV4)
	t.Logf("without ping_group_range: %s", out.Err)
	if !out.Permission {
		t.Fatalf("got %+v, want a permission error", out)
	}
	for _, want := range []string{"net.ipv4.ping_group_range", `"1 0"`, "group 65534", "CAP_NET_RAW", `"0 2147483647"`} {
		if !strings.Contains(out.Err, want) {
			t.Errorf("error %q does not mention %s", out.Err, want)
		}
	}
}

// TestLabRawAsRoot: with the kernel's default ping_group_range the datagram
// socket is refused even to root, and the engine falls back to a raw socket.
func TestLabRawAsRoot(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1400})
	p.Prober.Sysctl("net.ipv4.ping_group_range", "1 0")
	for _, dst := range []netip.Addr{p.TargetV4, p.TargetV6} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var res icmp.EchoResult
		var err error
		inNS(t, p.Prober, func() { res, err = icmp.Echo(ctx, dst, icmp.EchoOptions{}) })
		cancel()
		if err != nil || res.Socket != icmp.Raw || res.Received != icmp.DefaultCount {
			t.Errorf("%s: %+v, %v; want %d replies over a raw socket", dst, res, err, icmp.DefaultCount)
		}
		mtu, err := pathMTU(t, p.Prober, dst, icmp.MTUOptions{})
		if err != nil || mtu.Socket != icmp.Raw || mtu.PathMTU != 1400 {
			t.Errorf("%s: path MTU %d over %s, %v; want 1400 over a raw socket", dst, mtu.PathMTU, mtu.Socket, err)
		}
	}
}

// TestLabUnreachable: an address the router has no route for comes back as
// "destination unreachable" from the router, not as silent loss.
func TestLabUnreachable(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var err error
	inNS(t, p.Prober, func() { _, err = icmp.Echo(ctx, netip.MustParseAddr("10.201.9.9"), icmp.EchoOptions{}) })
	if !errors.Is(err, icmp.ErrUnreachable) || !strings.Contains(err.Error(), p.RouterV4.String()) {
		t.Errorf("got %v, want destination unreachable from %s", err, p.RouterV4)
	}
}

// TestLabTotalLoss: a target that drops every echo fails with ErrNoReply.
func TestLabTotalLoss(t *testing.T) {
	p := netlab.NewPath(t, netlab.PathConfig{FirstMTU: 1500, SecondMTU: 1500}, "iptables")
	p.Target.IPTables("-A", "INPUT", "-p", "icmp", "-j", "DROP")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var res icmp.EchoResult
	var err error
	inNS(t, p.Prober, func() { res, err = icmp.Echo(ctx, p.TargetV4, icmp.EchoOptions{}) })
	if !errors.Is(err, icmp.ErrNoReply) || res.Sent != icmp.DefaultCount || res.Loss() != 1 {
		t.Errorf("got %+v, %v; want %d sent and ErrNoReply", res, err, icmp.DefaultCount)
	}
}

// helperBinary copies the test binary where an unprivileged user can run it
// (go test keeps it in a directory only root may enter).
func helperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "icmp-lab-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	bin := dir + "/icmp-lab"
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// runAsNobody runs the helper mode in ns as uid/gid 65534 without
// capabilities and returns what it printed.
func runAsNobody(t *testing.T, ns *netlab.Namespace, bin, mode string, dst netip.Addr) helperOutput {
	t.Helper()
	return runAs(t, ns, nobody, bin, mode, dst)
}

// runAs runs the helper mode in ns as cred without capabilities.
func runAs(t *testing.T, ns *netlab.Namespace, cred *syscall.Credential, bin, mode string, dst netip.Addr) helperOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, cred, bin)
	cmd.Env = []string{helperEnv + "=" + mode, helperDstEnv + "=" + dst.String()}
	stdout, err := cmd.Output()
	var out helperOutput
	if jerr := json.Unmarshal(stdout, &out); err != nil || jerr != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("helper %s %s: %v, %v: %s %s", mode, dst, err, jerr, stdout, stderr)
	}
	return out
}
