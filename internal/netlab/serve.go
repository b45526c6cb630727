package netlab

import (
	"bufio"
	"context"
	"net/netip"
	"regexp"
	"time"
)

// servingLine is the log line with which `heartbeat serve` reports the
// address it accepts requests on.
var servingLine = regexp.MustCompile(`msg="heartbeat serving".* addr=(\S+)`)

// ServeHeartbeat runs `heartbeat serve` (bin) in the namespace on a free port of addr and returns its address.
func (ns *Namespace) ServeHeartbeat(bin string, addr netip.Addr) string {
	t := ns.lab.t
	t.Helper()
	cmd := ns.Command(context.Background(), nil, bin, "serve",
		"--listen", netip.AddrPortFrom(addr, 0).String(), "--syslog-addr", "none")
	cmd.Env = []string{"OTEL_SDK_DISABLED=true"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	ns.lab.Start(cmd)
	listening := make(chan string, 1)
	go func() {
		defer close(listening)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case a, ok := <-listening:
		if !ok {
			t.Fatalf("netlab: heartbeat serve in %s exited before listening", ns.Name)
		}
		return a
	case <-time.After(30 * time.Second):
		t.Fatalf("netlab: heartbeat serve in %s did not report listening within 30 s", ns.Name)
	}
	return ""
}
