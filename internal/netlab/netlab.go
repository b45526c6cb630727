// Package netlab builds network test beds from the kernel: network
// namespaces joined by veth pairs, with MTUs, routes, forwarding, sysctls and
// iptables rules per namespace, and processes run inside them. Everything a
// lab creates has a name unique to the run and is removed when the test ends,
// on every exit path; a lab left by a killed test binary is removed by the
// next lab built on the machine.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// namePrefix starts every namespace a lab creates, followed by the creating
// process's pid, so a sweep can tell live labs from abandoned ones.
const namePrefix = "hblab-"

// netnsDir is where `ip netns` keeps the bind mounts that name namespaces.
const netnsDir = "/run/netns"

// commandTimeout bounds each ip/iptables command a lab runs.
const commandTimeout = 30 * time.Second

// Lab is one test bed, whose methods fail the test on any error.
type Lab struct {
	// A lab that cannot be built is a broken test environment, not a result.
	t     testing.TB
	id    string
	mu    sync.Mutex
	nss   []*Namespace
	procs []*exec.Cmd
	once  sync.Once
}

// New builds an empty lab torn down by t.Cleanup, or skips t (fails it under CI=true) saying why not.
func New(t testing.TB, tools ...string) *Lab {
	t.Helper()
	Require(t, tools...)
	sweep()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("netlab: random name: %v", err)
	}
	l := &Lab{t: t, id: fmt.Sprintf("%s%d-%s", namePrefix, os.Getpid(), hex.EncodeToString(b[:]))}
	t.Cleanup(l.Close)
	return l
}

// Require skips t (fails it under CI=true) unless a lab using tools can be built here.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	// CI runs as root and must build the lab; elsewhere a machine that
	// cannot (not root, no ip command) skips with the reason.
	if reason := missing(append([]string{"ip"}, tools...)); reason != "" {
		Unavailable(t, reason)
	}
}

// Unavailable skips t with reason, or fails it when CI=true.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("netlab: cannot build the network lab under CI: %s", reason)
	}
	t.Skipf("netlab: skipped, the network lab needs it: %s", reason)
}

// missing says why the tools cannot be used here, or "" when they can.
func missing(tools []string) string {
	if os.Geteuid() != 0 {
		return "not running as root (network namespaces need CAP_SYS_ADMIN)"
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("%s not found in PATH", tool)
		}
	}
	return ""
}

// Namespace is one network namespace of a lab.
type Namespace struct {
	lab  *Lab
	Name string // the `ip netns` name, unique to this run
}

// Namespace creates a namespace whose name ends in role, with loopback up.
func (l *Lab) Namespace(role string) *Namespace {
	l.t.Helper()
	ns := &Namespace{lab: l, Name: l.id + "-" + role}
	// Registered before it exists, so a half-made namespace is still removed.
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	l.ip("netns", "add", ns.Name)
	ns.IP("link", "set", "lo", "up")
	// Interfaces made from now on skip duplicate address detection, so
	// their IPv6 link-local addresses (neighbour discovery's source) work at
	// once instead of after a second or two.
	ns.Sysctl("net.ipv6.conf.default.accept_dad", "0")
	ns.Sysctl("net.ipv6.conf.all.accept_dad", "0")
	return ns
}

// Link joins a and b with a veth pair, aIf (MTU aMTU) in a and bIf (MTU bMTU) in b, both up.
func (l *Lab) Link(a *Namespace, aIf string, aMTU int, b *Namespace, bIf string, bMTU int) {
	l.t.Helper()
	// The two ends may differ, as an overlay's endpoints can disagree with
	// the path. The pair is made inside the namespaces, so interface names
	// need be unique only there, not across labs on the machine.
	a.IP("link", "add", aIf, "mtu", strconv.Itoa(aMTU), "type", "veth",
		"peer", "name", bIf, "mtu", strconv.Itoa(bMTU), "netns", b.Name)
	a.IP("link", "set", aIf, "up")
	b.IP("link", "set", bIf, "up")
}

// IP runs `ip` with args inside the namespace.
func (ns *Namespace) IP(args ...string) string {
	ns.lab.t.Helper()
	return ns.lab.ip(append([]string{"-n", ns.Name}, args...)...)
}

// Addr adds an address in CIDR form to an interface.
func (ns *Namespace) Addr(ifname, cidr string) {
	ns.lab.t.Helper()
	// IPv6 addresses skip duplicate address detection so they work at once.
	args := []string{"addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	ns.IP(args...)
}

// Route adds a route, e.g. Route("default", "via", "10.0.1.2").
func (ns *Namespace) Route(args ...string) {
	ns.lab.t.Helper()
	family := "-4"
	for _, a := range args {
		if strings.Contains(a, ":") {
			family = "-6"
		}
	}
	ns.IP(append([]string{family, "route", "add"}, args...)...)
}

// Sysctl sets a per-namespace (net.*) sysctl, key in dotted form ("net.ipv4.ip_forward").
func (ns *Namespace) Sysctl(key, value string) {
	ns.lab.t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	err := ns.Do(func() error { return os.WriteFile(path, []byte(value), 0) })
	if err != nil {
		ns.lab.t.Fatalf("netlab: sysctl %s=%s in %s: %v", key, value, ns.Name, err)
	}
}

// Forwarding turns on IPv4 and IPv6 forwarding, making the namespace a router.
func (ns *Namespace) Forwarding() {
	ns.lab.t.Helper()
	ns.Sysctl("net.ipv4.ip_forward", "1")
	ns.Sysctl("net.ipv6.conf.all.forwarding", "1")
}

// Run runs a program inside the namespace as root and returns its output.
func (ns *Namespace) Run(name string, args ...string) string {
	ns.lab.t.Helper()
	return ns.lab.run(append([]string{"ip", "netns", "exec", ns.Name, name}, args...)...)
}

// IPTables runs iptables with args inside the namespace, whose rules go with it.
func (ns *Namespace) IPTables(args ...string) {
	ns.lab.t.Helper()
	ns.Run("iptables", append([]string{"-w"}, args...)...)
}

// IP6Tables is IPTables for IPv6.
func (ns *Namespace) IP6Tables(args ...string) {
	ns.lab.t.Helper()
	ns.Run("ip6tables", append([]string{"-w"}, args...)...)
}

// TC runs tc (qdiscs such as tbf; this kernel has no netem) in the namespace.
func (ns *Namespace) TC(args ...string) {
	ns.lab.t.Helper()
	ns.Run("tc", args...)
}

// IPTablesCounter returns the packets of the first filter rule in chain whose iptables -S text contains match.
func (ns *Namespace) IPTablesCounter(chain, match string) int {
	ns.lab.t.Helper()
	out := ns.Run("iptables", "-w", "-S", chain, "-v")
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "-c" {
				n, err := strconv.Atoi(f[i+1])
				if err == nil {
					return n
				}
			}
		}
	}
	ns.lab.t.Fatalf("netlab: no rule matching %q in %s of %s:\n%s", match, chain, ns.Name, out)
	return 0
}

// Do runs f on an OS thread switched into the namespace.
func (ns *Namespace) Do(f func() error) error {
	// Sockets f creates (synchronously, on its own goroutine) belong to the
	// namespace for their whole life; goroutines f starts run in the test's
	// own namespace.
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: current namespace: %w", err)
	}
	defer orig.Close()
	target, err := os.Open(netnsDir + "/" + ns.Name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: namespace %s: %w", ns.Name, err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: entering %s: %w", ns.Name, err)
	}
	defer func() {
		// A thread that cannot go back stays locked, so the runtime ends it
		// with this goroutine instead of reusing it in the wrong namespace.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return f()
}

// DialContext dials from inside the namespace, as an http.Transport's DialContext can.
func (ns *Namespace) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Command returns a command for the namespace, run as cred's uid/gid without capabilities when cred is set.
func (ns *Namespace) Command(ctx context.Context, cred *syscall.Credential, name string, args ...string) *exec.Cmd {
	// With cred there are no supplementary groups and no capabilities at
	// all (empty bounding and inheritable sets), as for an unprivileged
	// container process. Start it with Lab.Start so teardown kills it.
	argv := []string{"netns", "exec", ns.Name}
	if cred != nil {
		argv = append(argv, "setpriv",
			"--reuid="+strconv.FormatUint(uint64(cred.Uid), 10),
			"--regid="+strconv.FormatUint(uint64(cred.Gid), 10),
			"--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--")
	}
	argv = append(argv, name)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, "ip", argv...)
	// Its own process group, so teardown ends it and anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Start starts cmd (from Namespace.Command), which teardown kills and reaps if it still runs.
func (l *Lab) Start(cmd *exec.Cmd) {
	l.t.Helper()
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("netlab: starting %v: %v", cmd.Args, err)
	}
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.mu.Unlock()
}

// Close kills the lab's processes and deletes its namespaces; safe to call again and from a defer.
func (l *Lab) Close() {
	// The namespaces' veths, routes and iptables rules go with them.
	l.once.Do(func() {
		l.mu.Lock()
		procs, nss := l.procs, l.nss
		l.mu.Unlock()
		for _, p := range procs {
			if p.Process != nil && p.ProcessState == nil {
				_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
				_ = p.Wait()
			}
		}
		var errs []error
		for i := len(nss) - 1; i >= 0; i-- {
			if err := deleteNamespace(nss[i].Name); err != nil {
				errs = append(errs, err)
			}
		}
		if err := errors.Join(errs...); err != nil {
			l.t.Errorf("netlab: teardown: %v", err)
		}
	})
}

// deleteNamespace removes a namespace by name; one already gone is fine.
func deleteNamespace(name string) error {
	if _, err := os.Stat(netnsDir + "/" + name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "delete", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip netns delete %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// sweep deletes namespaces left by lab processes that no longer exist (a
// test binary killed by a timeout or a signal never runs its cleanups).
func sweep() {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), namePrefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = deleteNamespace(e.Name())
		}
	}
}

// Namespaces lists this process's lab namespaces that exist, for tests of the teardown.
func Namespaces() []string {
	entries, err := os.ReadDir(netnsDir)
	if err != nil {
		return nil
	}
	prefix := fmt.Sprintf("%s%d-", namePrefix, os.Getpid())
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func (l *Lab) ip(args ...string) string {
	l.t.Helper()
	return l.run(append([]string{"ip"}, args...)...)
}

// run runs a command to completion and fails the test with its output on error.
func (l *Lab) run(argv ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: %s: %v: %s", strings.Join(argv, " "), err, bytes.TrimSpace(out))
	}
	return string(out)
}
