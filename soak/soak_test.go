//go:build soak

package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/internal/testkit"
	"github.com/heartbeat-sidecar/heartbeat/telemetry/otlptest"
)

var (
	flagBin       = flag.String("soak.bin", "../bin/heartbeat", "the heartbeat binary under test (make build)")
	flagRequests  = flag.Int64("soak.requests", 1_000_000, "requests to send (the CI form); ignored with -soak.duration")
	flagDuration  = flag.Duration("soak.duration", 0, "send load for this long instead of a request count (the long form: 30m)")
	flagConns     = flag.Int("soak.conns", 16, "keep-alive connections of the load generator")
	flagMix       = flag.String("soak.mix", DefaultMix, "request mix, kind:weight,...")
	flagChecks    = flag.Int("soak.checks", 1000, "checks the server runs meanwhile (0: none)")
	flagCollector = flag.String("soak.collector", "auto", "telemetry destination: otelcol (bin/otelcol-heartbeat, exporting to otlpsink), otlpsink, otlptest (in this process), none; auto is otelcol when built, else otlpsink")
	flagOtelcol   = flag.String("soak.otelcol", "../bin/otelcol-heartbeat", "collector binary (scripts/collector.sh)")
	flagSink      = flag.String("soak.otlpsink", "", "otlpsink binary; empty builds ../bench/otlpsink")
	flagWarmup    = flag.Int64("soak.warmup", 100_000, "warm-up requests before the baseline is taken")
	flagSettle    = flag.Duration("soak.settle", -1, "least warm-up time; -1: one full check cycle when checks run")
	flagRSSGrowth = flag.Float64("soak.rss-growth", 0.10, "largest allowed growth of retained RSS (VmRSS less free heap, after forced GCs, at rest) from after warm-up to the end")
	flagProfiles  = flag.String("soak.heap-profiles", "", "directory for the heap profiles after warm-up and at the end (go tool pprof -diff_base); empty: a temporary one")
	flagReport    = flag.String("soak.report", "", "also write the figures (Markdown) to this file")
	flagNeedTel   = flag.Bool("soak.require-telemetry", true, "fail when the collector received no telemetry")
	flagNeedCheck = flag.Bool("soak.require-checks", true, "fail when the binary cannot run checks (no --config flag)")
)

// Check intervals of the generated file: 10 s to 30 s, as a fleet would set them.
const (
	minInterval  = 10 * time.Second
	maxInterval  = 30 * time.Second
	checkTimeout = 2 * time.Second
	// metricInterval is the server's metric export interval in the soak.
	metricInterval = 10 * time.Second
)

func TestSoak(t *testing.T) {
	bin, err := filepath.Abs(*flagBin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%v: run `make build` first", err)
	}
	mix, err := ParseMix(*flagMix)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if d, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d.Add(-30*time.Second))
	}
	defer cancel()
	dir := t.TempDir()
	r := &report{}

	help := capabilities(t, bin)
	withChecks := *flagChecks > 0 && help.config
	switch {
	case *flagChecks > 0 && !help.config && *flagNeedCheck:
		t.Fatalf("%s serve has no --config flag, so it cannot run the %d checks (pass -soak.require-checks=false to soak the payload server alone)", bin, *flagChecks)
	case *flagChecks > 0 && !help.config:
		t.Logf("WARNING: %s serve has no --config flag: soaking without checks", bin)
	}

	col := startCollector(ctx, t, dir, *flagCollector)
	r.add("telemetry destination", col.name, "", "")

	// Local targets for the checks, as real servers.
	var httpTargets, tcpTargets []string
	for range 3 {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "ok\n")
		}))
		t.Cleanup(s.Close)
		httpTargets = append(httpTargets, s.URL)
	}
	for range 2 {
		tcpTargets = append(tcpTargets, testkit.AcceptAndClose(t))
	}

	self := testkit.ClosedAddr(t)
	args := []string{"serve", "--listen", self, "--admin-listen", "127.0.0.1:0", "--max-size", "1048576"}
	if withChecks {
		path := filepath.Join(dir, "checks.yaml")
		spec := ChecksSpec{N: *flagChecks, Self: self, HTTPTargets: httpTargets, TCPTargets: tcpTargets,
			MinInterval: minInterval, MaxInterval: maxInterval, Timeout: checkTimeout}
		if err := WriteChecksFile(path, spec); err != nil {
			t.Fatal(err)
		}
		if help.validate {
			if out, err := exec.CommandContext(ctx, bin, "validate", "--config", path).CombinedOutput(); err != nil {
				t.Fatalf("heartbeat validate rejects the generated checks file: %v\n%s", err, out)
			}
		}
		args = append(args, "--config", path)
		if help.syslogAddr {
			// Every check passes, so no alert is due; none keeps a missing
			// /dev/log from mattering either way.
			args = append(args, "--syslog-addr", "none")
		}
	}
	settle := *flagSettle
	if settle < 0 {
		// The baseline is taken once the server's steady set of connections
		// and goroutines is in place: the exporters connect at their first
		// export, and each check at its first run.
		settle = 0
		if col.env != nil {
			settle = metricInterval + 5*time.Second
		}
		if withChecks {
			settle = max(settle, maxInterval+maxInterval/10+checkTimeout)
		}
	}

	srv := startHeartbeat(ctx, t, bin, args, col.env, filepath.Join(dir, "heartbeat.log"))
	admin := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	sample := func() sampleT { return takeSample(ctx, t, srv.pid, admin, srv.admin) }
	if withChecks {
		r.add("checks", fmt.Sprintf("%d (intervals %v to %v, timeout %v)", *flagChecks, minInterval, maxInterval, checkTimeout), "", "")
	} else {
		r.add("checks", "none", "", "")
	}
	r.add("load", fmt.Sprintf("%d keep-alive connections, mix %s", *flagConns, mix), "", "")

	// Sample the server throughout, for the peaks and a progress line.
	var (
		mu      sync.Mutex
		peak    sampleT
		current *Load
	)
	stopSampling := make(chan struct{})
	samplingDone := make(chan struct{})
	go func() {
		defer close(samplingDone)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		lastPrint := time.Now()
		for {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			s, err := trySample(ctx, srv.pid, admin, srv.admin)
			if err != nil {
				continue // the run's own checks report a dead server
			}
			mu.Lock()
			peak = peak.max(s)
			l := current
			mu.Unlock()
			if time.Since(lastPrint) >= 10*time.Second && l != nil && l.Running() {
				lastPrint = time.Now()
				fmt.Fprintf(os.Stderr, "soak: %s  %d requests (%.0f/s)  non-2xx %d  socket errors %d  RSS %s  goroutines %d  fds %d\n",
					l.Elapsed().Round(time.Second), l.Done.Load(), float64(l.Done.Load())/l.Elapsed().Seconds(),
					l.Non2xx.Load(), l.SocketErrors.Load(), FormatBytes(s.proc.RSS), s.goroutines, s.proc.FDs)
			}
		}
	}()
	defer func() {
		select {
		case <-stopSampling:
		default:
			close(stopSampling)
		}
		<-samplingDone
	}()

	start := sample()
	serverStart := time.Now()
	base := "http://" + srv.addr

	// Warm-up: the first flagWarmup requests, continued until the checks
	// have all run once.
	total := *flagRequests
	if *flagDuration > 0 {
		total = 0
	}
	warm := *flagWarmup
	if total > 0 {
		warm = min(warm, total)
	}
	fmt.Fprintf(os.Stderr, "soak: warm-up: %d requests, then rest until %v after the start\n", warm, settle)
	l1, done1, err := StartLoad(ctx, LoadConfig{BaseURL: base, Conns: *flagConns, Requests: warm, Duration: *flagDuration, Mix: mix, VerifyEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	current = l1
	mu.Unlock()
	waitLoad(ctx, t, l1, done1)
	warmEnded := time.Now()
	warmN := l1.Done.Load()
	// The checks and exporters go on meanwhile; the load does not need to.
	if rest := time.Until(serverStart.Add(settle)); rest > 0 {
		select {
		case <-time.After(rest):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	afterWarm := quiesce(ctx, t, sample, nil)
	stacksWarm, err := GoroutineStacks(ctx, admin, srv.admin)
	if err != nil {
		t.Fatal(err)
	}
	// The end is measured after as long a rest as this one, so that what the
	// load left queued (spans, metric points, buffers) has drained alike.
	restLen := time.Since(warmEnded)
	profDir := *flagProfiles
	if profDir == "" {
		profDir = dir
	}
	memWarm := measureRetained(ctx, t, srv.pid, admin, srv.admin, filepath.Join(profDir, "soak-heap-warm.pb.gz"))

	// The run proper.
	rest := int64(0)
	if total > 0 {
		rest = total - warmN
	}
	restDur := time.Duration(0)
	if *flagDuration > 0 {
		restDur = max(*flagDuration-l1.Elapsed(), time.Second)
	}
	l2 := l1
	if rest > 0 || restDur > 0 {
		var done2 <-chan struct{}
		l2, done2, err = StartLoad(ctx, LoadConfig{BaseURL: base, Conns: *flagConns, Requests: rest, Duration: restDur, Mix: mix, First: uint64(warmN), VerifyEvery: 1000})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		current = l2
		mu.Unlock()
		waitLoad(ctx, t, l2, done2)
	}
	fmt.Fprintf(os.Stderr, "soak: load done; rest %v, as after the warm-up, before the end figures\n", restLen.Round(time.Second))
	select {
	case <-time.After(restLen):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	end := quiesce(ctx, t, sample, &afterWarm)
	memEnd := measureRetained(ctx, t, srv.pid, admin, srv.admin, filepath.Join(profDir, "soak-heap-end.pb.gz"))
	if end.goroutines > afterWarm.goroutines {
		if stacksEnd, err := GoroutineStacks(ctx, admin, srv.admin); err == nil {
			for _, g := range StackGrowth(stacksWarm, stacksEnd) {
				t.Logf("goroutines not back: %s", g)
			}
		}
	}
	close(stopSampling)
	<-samplingDone
	statusEnd := checkStatus(ctx, base)

	exit := srv.stop(t)
	colSummary := col.stop(t)

	// Figures.
	loads := []*Load{l1}
	if l2 != l1 {
		loads = append(loads, l2)
	}
	var n, non2xx, sockErr, badBody, in, out int64
	var elapsed time.Duration
	var failures []string
	statuses := map[int]int64{}
	for _, l := range loads {
		n += l.Done.Load()
		non2xx += l.Non2xx.Load()
		sockErr += l.SocketErrors.Load()
		badBody += l.BadBodies.Load()
		in += l.BytesIn.Load()
		out += l.BytesOut.Load()
		elapsed += l.Elapsed()
		failures = append(failures, l.Failures()...)
		for k, v := range l.Statuses() {
			statuses[k] += v
		}
	}
	rate := float64(n) / elapsed.Seconds()
	r.add("requests", fmt.Sprint(n), want(total > 0, fmt.Sprint(total)), verdict(total == 0 || n == total))
	r.add("load time", elapsed.Round(time.Second).String(), "", "")
	r.add("rate", fmt.Sprintf("%.0f req/s, %.0f MiB/s down, %.0f MiB/s up", rate, float64(in)/(1<<20)/elapsed.Seconds(), float64(out)/(1<<20)/elapsed.Seconds()), "", "")
	r.add("time for 1,000,000 requests at this rate", (time.Duration(1e6/rate) * time.Second).Round(time.Second).String(), "", "")
	r.add("non-2xx responses", fmt.Sprint(non2xx), "0", verdict(non2xx == 0))
	r.add("socket errors", fmt.Sprint(sockErr), "0", verdict(sockErr == 0))
	r.add("wrong bodies", fmt.Sprint(badBody), "0", verdict(badBody == 0))
	for _, l := range loads[len(loads)-1].Latencies() {
		r.add("latency "+l.Name, fmt.Sprintf("p50 ≤ %v, p99 ≤ %v, max %v (n=%d, run proper)", l.P50, l.P99, l.Max.Round(time.Microsecond), l.N), "", "")
	}
	growth := float64(memEnd.retained()-memWarm.retained()) / float64(memWarm.retained())
	rssOK := growth <= *flagRSSGrowth && memWarm.floor.OK && memEnd.floor.OK
	r.add("retained RSS after warm-up / end (floor of forced-GC snapshots of VmRSS − free heap resident)", fmt.Sprintf("%s / %s (%+.1f %%)%s", FormatBytes(memWarm.retained()), FormatBytes(memEnd.retained()), 100*growth, memWarm.unsettled()+memEnd.unsettled()),
		fmt.Sprintf("end ≤ warm-up + %.0f %%", 100**flagRSSGrowth), verdict(rssOK))
	r.add("  VmRSS / free heap resident at the floor snapshots", fmt.Sprintf("%s / %s → %s / %s", FormatBytes(memWarm.proc.RSS), FormatBytes(int64(memWarm.mem.HeapRetainedFree())), FormatBytes(memEnd.proc.RSS), FormatBytes(int64(memEnd.mem.HeapRetainedFree()))), "", "")
	r.add("  VmRSS anon / file", fmt.Sprintf("%s / %s → %s / %s", FormatBytes(memWarm.proc.RSSAnon), FormatBytes(memWarm.proc.RSSFile), FormatBytes(memEnd.proc.RSSAnon), FormatBytes(memEnd.proc.RSSFile)), "", "")
	r.add("  Go live heap / heap in use / stacks", fmt.Sprintf("%s / %s / %s → %s / %s / %s", FormatBytes(int64(memWarm.mem.HeapAlloc)), FormatBytes(int64(memWarm.mem.HeapInuse)), FormatBytes(int64(memWarm.mem.StackInuse)),
		FormatBytes(int64(memEnd.mem.HeapAlloc)), FormatBytes(int64(memEnd.mem.HeapInuse)), FormatBytes(int64(memEnd.mem.StackInuse))), "", "")
	r.add("VmRSS at start / at rest after warm-up / end (no forced GC, largest of 3 s)", fmt.Sprintf("%s / %s / %s", FormatBytes(start.proc.RSS), FormatBytes(afterWarm.rss), FormatBytes(end.rss)), "", "")
	r.add("heap profiles (forced GC)", memWarm.profile+", "+memEnd.profile, "", "")
	r.add("peak RSS (VmHWM)", FormatBytes(max(peak.proc.PeakRSS, end.peakRSS)), "", "")
	r.add("goroutines after warm-up / end", fmt.Sprintf("%d / %d (peak %d)", afterWarm.goroutines, end.goroutines, peak.goroutines),
		"end ≤ after warm-up", verdict(end.goroutines <= afterWarm.goroutines))
	r.add("fds after warm-up / end", fmt.Sprintf("%d / %d (peak %d)", afterWarm.fds, end.fds, peak.proc.FDs),
		"end ≤ after warm-up", verdict(end.fds <= afterWarm.fds))
	r.add("threads after warm-up / end", fmt.Sprintf("%d / %d (peak %d)", afterWarm.threads, end.threads, peak.proc.Threads), "", "")
	r.add("server CPU time", fmt.Sprintf("%v (%.0f µs/request)", end.cpu.Round(time.Second), float64(end.cpu.Microseconds())/float64(n)), "", "")
	if withChecks {
		ok := statusEnd.err == nil && statusEnd.ran == *flagChecks
		r.add("checks that ran / configured", fmt.Sprintf("%d / %d (%d runs, %d skipped)", statusEnd.ran, *flagChecks, statusEnd.runs, statusEnd.skipped),
			"all ran", verdict(ok))
		r.add("check failures", fmt.Sprint(statusEnd.failures), "0", verdict(statusEnd.failures == 0))
		if statusEnd.err != nil {
			t.Errorf("/status: %v", statusEnd.err)
		}
	}
	telOK := col.name == "none" || colSummary.received > 0 || !*flagNeedTel
	r.add("telemetry received", colSummary.text, want(col.name != "none", "> 0"), verdict(telOK))
	r.add("server exit on SIGTERM", exit.String(), "0, within 30 s", verdict(exit.err == nil))
	r.add("server log warnings / errors", fmt.Sprintf("%d / %d", srv.warns(), srv.errors()), "", "")
	for _, line := range srv.firstProblems() {
		r.add("  log", line, "", "")
	}

	table := r.String()
	fmt.Println(table)
	if *flagReport != "" {
		if err := os.WriteFile(*flagReport, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, f := range failures {
		t.Logf("failure: %s", f)
	}
	if len(statuses) > 0 {
		t.Logf("non-2xx by status: %v", statuses)
	}
	if !rssOK {
		// The evidence for a leak: what the live heap gained, by allocation site.
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=25", "-sample_index=inuse_space",
			"-diff_base="+memWarm.profile, memEnd.profile).CombinedOutput()
		t.Logf("heap growth from after warm-up to the end (go tool pprof -top -diff_base=%s %s): %v\n%s", memWarm.profile, memEnd.profile, err, out)
	}
	for _, row := range r.rows {
		if row.result == "FAIL" {
			t.Errorf("%s: %s (want %s)", row.name, row.value, row.want)
		}
	}
}

func want(cond bool, s string) string {
	if cond {
		return s
	}
	return ""
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "FAIL"
}

// report is the figures table.
type report struct{ rows []reportRow }

type reportRow struct{ name, value, want, result string }

func (r *report) add(name, value, want, result string) {
	r.rows = append(r.rows, reportRow{name, value, want, result})
}

// String renders a Markdown table, readable as plain text too.
func (r *report) String() string {
	var b strings.Builder
	b.WriteString("| figure | value | pass when | result |\n|---|---|---|---|\n")
	for _, row := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.name, row.value, row.want, row.result)
	}
	return b.String()
}

// binFeatures is what the binary under test supports, read from its usage
// text, so the soak runs against builds from before and after the checks are wired.
type binFeatures struct{ config, syslogAddr, validate bool }

func capabilities(t *testing.T, bin string) binFeatures {
	t.Helper()
	out, _ := exec.Command(bin, "serve", "-h").CombinedOutput()
	usage, _ := exec.Command(bin, "help").CombinedOutput()
	s := string(out)
	return binFeatures{
		config:     strings.Contains(s, "-config"),
		syslogAddr: strings.Contains(s, "-syslog-addr"),
		validate:   strings.Contains(string(usage), "validate"),
	}
}

// server is the heartbeat process under test.
type server struct {
	cmd         *exec.Cmd
	pid         int
	addr, admin string
	waited      chan error

	mu       sync.Mutex
	nWarn    int
	nErr     int
	problems []string
}

var addrAttr = regexp.MustCompile(`\baddr=(\S+)`)

func startHeartbeat(ctx context.Context, t *testing.T, bin string, args, env []string, logPath string) *server {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, waited: make(chan error, 1)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.waited
		}
	})
	addrs := make(chan [2]string, 2)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := addrAttr.FindStringSubmatch(line); m != nil {
				switch {
				case strings.Contains(line, "admin"):
					addrs <- [2]string{"admin", m[1]}
				case strings.Contains(line, `msg="heartbeat serving"`):
					addrs <- [2]string{"serve", m[1]}
				}
			}
			s.mu.Lock()
			switch {
			case strings.Contains(line, "level=WARN"):
				s.nWarn++
			case strings.Contains(line, "level=ERROR"), strings.HasPrefix(line, "panic:"), strings.HasPrefix(line, "fatal error:"):
				s.nErr++
			default:
				s.mu.Unlock()
				continue
			}
			if len(s.problems) < 5 {
				s.problems = append(s.problems, line)
			}
			s.mu.Unlock()
		}
	}()
	go func() {
		<-scanned // Wait closes the pipe: read it to the end first
		s.waited <- cmd.Wait()
	}()
	for s.addr == "" || s.admin == "" {
		select {
		case a := <-addrs:
			if a[0] == "admin" {
				s.admin = a[1]
			} else {
				s.addr = a[1]
			}
		case err := <-s.waited:
			s.waited <- err
			t.Fatalf("heartbeat %s exited at start: %v (log: %s)", strings.Join(args, " "), err, tail(logPath))
		case <-time.After(30 * time.Second):
			t.Fatalf("heartbeat did not report its listeners within 30s (log: %s)", tail(logPath))
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	waitReady(ctx, t, "http://"+s.addr+"/readyz")
	return s
}

func (s *server) warns() int  { s.mu.Lock(); defer s.mu.Unlock(); return s.nWarn }
func (s *server) errors() int { s.mu.Lock(); defer s.mu.Unlock(); return s.nErr }
func (s *server) firstProblems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.problems...)
}

// exitResult is how the server ended.
type exitResult struct {
	err  error
	took time.Duration
}

func (e exitResult) String() string {
	if e.err != nil {
		return fmt.Sprintf("%v after %v", e.err, e.took.Round(time.Millisecond))
	}
	return fmt.Sprintf("exit 0 after %v", e.took.Round(time.Millisecond))
}

// stop sends SIGTERM and waits for the graceful exit.
func (s *server) stop(t *testing.T) exitResult {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return exitResult{err: err}
	}
	select {
	case err := <-s.waited:
		return exitResult{err: err, took: time.Since(start)}
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.waited
		return exitResult{err: errors.New("no exit within 30s of SIGTERM; killed"), took: time.Since(start)}
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func waitReady(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				http.DefaultClient.CloseIdleConnections()
				return
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("%s never answered 200: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// sampleT is one measurement of the server.
type sampleT struct {
	proc       ProcStat
	goroutines int
}

func (s sampleT) max(o sampleT) sampleT {
	return sampleT{
		proc: ProcStat{
			RSS: max(s.proc.RSS, o.proc.RSS), PeakRSS: max(s.proc.PeakRSS, o.proc.PeakRSS),
			Threads: max(s.proc.Threads, o.proc.Threads), FDs: max(s.proc.FDs, o.proc.FDs), CPU: max(s.proc.CPU, o.proc.CPU),
		},
		goroutines: max(s.goroutines, o.goroutines),
	}
}

func trySample(ctx context.Context, pid int, admin *http.Client, adminAddr string) (sampleT, error) {
	p, err := ReadProc(pid)
	if err != nil {
		return sampleT{}, err
	}
	g, err := Goroutines(ctx, admin, adminAddr)
	if err != nil {
		return sampleT{}, err
	}
	return sampleT{proc: p, goroutines: g}, nil
}

func takeSample(ctx context.Context, t *testing.T, pid int, admin *http.Client, adminAddr string) sampleT {
	t.Helper()
	s, err := trySample(ctx, pid, admin, adminAddr)
	if err != nil {
		t.Fatalf("sampling the server: %v", err)
	}
	return s
}

// steady is the server at rest: the largest of several samples, so the
// checks' probes in flight at one instant do not decide the figure.
type steady struct {
	rss, peakRSS             int64
	goroutines, fds, threads int
	cpu                      time.Duration
}

// quiesceWindow is how long the server is sampled at rest.
const quiesceWindow = 3 * time.Second

// quiesce samples the server at rest (no load running) for quiesceWindow,
// once the load's connections are gone.
// Goroutines and fds are the largest figures seen, so the checks' probes in
// flight at one instant do not decide the baseline. With base, it first waits
// until goroutines and fds are back to base: the load's connections close as
// the server reads their FINs, while a leak never comes back. Those figures
// are then the ones of the first sample back at base, or of the last one
// when 60 s pass without.
func quiesce(ctx context.Context, t *testing.T, sample func() sampleT, base *steady) steady {
	t.Helper()
	var back sampleT
	if base == nil {
		// The load's connections close as the server reads their FINs: wait
		// until goroutines and fds have stopped falling for a second.
		var hist []sampleT
		deadline := time.Now().Add(30 * time.Second)
		for {
			s := sample()
			hist = append(hist, s)
			if n := len(hist); n > 4 && s.goroutines >= hist[n-5].goroutines && s.proc.FDs >= hist[n-5].proc.FDs {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(250 * time.Millisecond) // polling interval
		}
	} else {
		deadline := time.Now().Add(60 * time.Second)
		for {
			back = sample()
			if back.goroutines <= base.goroutines && back.proc.FDs <= base.fds {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				t.Logf("server not back to its post-warm-up goroutines (%d, base %d) and fds (%d, base %d) within 60s",
					back.goroutines, base.goroutines, back.proc.FDs, base.fds)
				break
			}
			time.Sleep(250 * time.Millisecond) // polling interval
		}
	}
	var st steady
	until := time.Now().Add(quiesceWindow)
	for time.Now().Before(until) {
		s := sample()
		st.rss = max(st.rss, s.proc.RSS)
		st.peakRSS = max(st.peakRSS, s.proc.PeakRSS)
		st.goroutines = max(st.goroutines, s.goroutines)
		st.fds = max(st.fds, s.proc.FDs)
		st.threads = max(st.threads, s.proc.Threads)
		st.cpu = max(st.cpu, s.proc.CPU)
		time.Sleep(250 * time.Millisecond) // sampling interval
	}
	if base != nil {
		st.goroutines, st.fds = back.goroutines, back.proc.FDs
	}
	return st
}

// memFloor is how the retained figure is read: a snapshot a second, each
// after its own forced GC, for one metric export interval and more (the
// export of 1,000 checks' metrics is a burst of several MiB in flight), and on
// until two of them agree on a floor within 1 %.
var memFloor = FloorConfig{Interval: time.Second, Window: metricInterval + 2*time.Second, Tolerance: 0.01, Bound: 40 * time.Second}

// retainedMem is what the server retains at rest.
//
// The RSS of a moment is no measure of it: the checks and the exporters
// allocate all the time, so between two GCs the heap fills with garbage, on
// pages faulted back in after the scavenger returned them, and RSS swings
// with the GC's and the scavenger's schedule by more than the whole live
// heap (±20 % of RSS here). So each snapshot forces a GC, then subtracts
// from VmRSS the free heap the runtime still holds resident (HeapIdle −
// HeapReleased): what RSS would be after debug.FreeOSMemory. A leak of heap
// objects, goroutine stacks, runtime metadata or anything mapped outside the
// Go heap counts in full; only free pages awaiting the scavenger do not. The
// figure is the floor of the snapshots, so that a burst of telemetry export
// in flight at one of them does not decide it.
type retainedMem struct {
	floor   Floor    // of the snapshots' retained figure
	proc    ProcStat // at the floor snapshot
	mem     MemStats // at the floor snapshot, read just after proc
	rawRSS  []int64  // VmRSS of each snapshot
	profile string   // heap profile after a forced GC
}

func (m retainedMem) retained() int64 { return m.floor.Value }

func (m retainedMem) unsettled() string {
	if m.floor.OK {
		return ""
	}
	return fmt.Sprintf(" (no two snapshots within %.0f %% in %v)", 100*memFloor.Tolerance, memFloor.Bound)
}

// measureRetained saves a heap profile after a forced GC, then reads the
// floor of the retained figure.
func measureRetained(ctx context.Context, t *testing.T, pid int, admin *http.Client, adminAddr, profile string) retainedMem {
	t.Helper()
	m := retainedMem{profile: profile}
	before, err := ReadProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveHeapProfile(ctx, admin, adminAddr, profile); err != nil {
		t.Fatal(err)
	}
	var live []int64
	best := int64(-1)
	m.floor, err = ReadFloor(ctx, memFloor, func() (int64, error) {
		gc, err := ReadMemStats(ctx, admin, adminAddr, true)
		if err != nil {
			return 0, err
		}
		p, err := ReadProc(pid)
		if err != nil {
			return 0, err
		}
		// MemStats read after VmRSS: whatever the scavenger returns or the
		// heap reuses in between lowers the free figure, so the difference
		// errs high, never low.
		ms, err := ReadMemStats(ctx, admin, adminAddr, false)
		if err != nil {
			return 0, err
		}
		v := p.RSS - int64(ms.HeapRetainedFree())
		if best < 0 || v < best {
			best = v
			m.proc, m.mem = p, ms
			m.mem.HeapAlloc = gc.HeapAlloc // the live heap, right after the GC
		}
		m.rawRSS = append(m.rawRSS, p.RSS)
		live = append(live, int64(gc.HeapAlloc))
		return v, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: VmRSS %s before the forced GCs; snapshots (forced GC each): VmRSS %s; retained %s; live heap %s; floor %s (two within %.0f %%: %v); at the floor: heap in use %s, stacks %s, free heap resident %s; GCs %d (%d forced)",
		filepath.Base(profile), FormatBytes(before.RSS), formatAll(m.rawRSS), formatAll(m.floor.Readings), formatAll(live),
		FormatBytes(m.floor.Value), 100*memFloor.Tolerance, m.floor.OK,
		FormatBytes(int64(m.mem.HeapInuse)), FormatBytes(int64(m.mem.StackInuse)),
		FormatBytes(int64(m.mem.HeapRetainedFree())), m.mem.NumGC, m.mem.NumForcedGC)
	return m
}

func formatAll(v []int64) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = FormatBytes(n)
	}
	return strings.Join(s, ", ")
}

// waitLoad waits for the load to end by itself.
func waitLoad(ctx context.Context, t *testing.T, l *Load, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("the soak ran out of time (go test -timeout) after %d requests", l.Done.Load())
	}
}

// statusFigures sums the checks' /status document.
type statusFigures struct {
	ran                     int
	runs, failures, skipped uint64
	err                     error
}

func checkStatus(ctx context.Context, base string) statusFigures {
	var f statusFigures
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/status", nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.err = err
		return f
	}
	defer resp.Body.Close()
	var doc struct {
		Checks []struct {
			Runs     uint64 `json:"runs"`
			Failures uint64 `json:"failures"`
			Skipped  uint64 `json:"skipped"`
		} `json:"checks"`
	}
	if resp.StatusCode != http.StatusOK {
		f.err = fmt.Errorf("GET /status: %s", resp.Status)
		return f
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		f.err = fmt.Errorf("GET /status: %w", err)
		return f
	}
	for _, c := range doc.Checks {
		if c.Runs > 0 {
			f.ran++
		}
		f.runs += c.Runs
		f.failures += c.Failures
		f.skipped += c.Skipped
	}
	http.DefaultClient.CloseIdleConnections()
	return f
}

// collector is the telemetry destination.
type collector struct {
	name string
	env  []string
	stop func(t *testing.T) collectorSummary
}

type collectorSummary struct {
	text     string
	received int64 // data points, spans and log records
}

func startCollector(ctx context.Context, t *testing.T, dir, kind string) collector {
	t.Helper()
	if kind == "auto" {
		kind = "otlpsink"
		if fi, err := os.Stat(*flagOtelcol); err == nil && fi.Mode()&0o111 != 0 {
			kind = "otelcol"
		}
	}
	env := func(endpoint string) []string {
		return []string{
			"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + endpoint,
			"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
			"OTEL_SERVICE_NAME=heartbeat-soak",
			fmt.Sprintf("OTEL_METRIC_EXPORT_INTERVAL=%d", metricInterval.Milliseconds()),
		}
	}
	switch kind {
	case "none":
		return collector{name: "none (telemetry off)", stop: func(*testing.T) collectorSummary { return collectorSummary{text: "-"} }}
	case "otlptest":
		r := otlptest.Start(t)
		return collector{name: "otlptest (in the test process)", env: env(r.Endpoint()), stop: func(*testing.T) collectorSummary {
			spans, metrics, logs := len(r.Spans()), len(r.Metrics()), len(r.Logs())
			return collectorSummary{
				text:     fmt.Sprintf("%d spans, %d metric streams, %d log records", spans, metrics, logs),
				received: int64(spans + metrics + logs),
			}
		}}
	case "otlpsink":
		sink := startSink(ctx, t, dir)
		return collector{name: "otlpsink (bench/otlpsink)", env: env(sink.addr), stop: func(t *testing.T) collectorSummary { return sink.stop(t) }}
	case "otelcol":
		sink := startSink(ctx, t, dir)
		oc := startOtelcol(ctx, t, dir, sink.addr)
		return collector{name: "otelcol-heartbeat → otlpsink", env: env(oc.addr), stop: func(t *testing.T) collectorSummary {
			colFigures := oc.stop(t)
			s := sink.stop(t)
			s.text = colFigures + "; downstream " + s.text
			return s
		}}
	default:
		t.Fatalf("-soak.collector=%q: want auto, otelcol, otlpsink, otlptest or none", kind)
		return collector{}
	}
}

// sinkProc is a running otlpsink.
type sinkProc struct {
	addr string
	stop func(t *testing.T) collectorSummary
}

var sinkCounts = regexp.MustCompile(`export_requests=(\d+) spans=(\d+) metric_points=(\d+) log_records=(\d+)`)

func startSink(ctx context.Context, t *testing.T, dir string) sinkProc {
	t.Helper()
	bin := *flagSink
	if bin == "" {
		bin = filepath.Join(dir, "otlpsink")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../bench/otlpsink").CombinedOutput(); err != nil {
			t.Fatalf("building otlpsink: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(bin, "-listen", "127.0.0.1:0", "-timeout", "3h")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	select {
	case l := <-lines:
		addr = strings.TrimPrefix(l, "listening on ")
	case <-time.After(30 * time.Second):
		t.Fatal("otlpsink did not start")
	}
	return sinkProc{addr: addr, stop: func(t *testing.T) collectorSummary {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var last string
		for l := range lines {
			last = l
		}
		_ = cmd.Wait()
		m := sinkCounts.FindStringSubmatch(last)
		if m == nil {
			t.Errorf("otlpsink's last line %q has no counts", last)
			return collectorSummary{text: "unknown"}
		}
		var spans, points, logs int64
		fmt.Sscan(m[2], &spans)
		fmt.Sscan(m[3], &points)
		fmt.Sscan(m[4], &logs)
		return collectorSummary{
			text:     fmt.Sprintf("%s export requests: %d spans, %d metric points, %d log records", m[1], spans, points, logs),
			received: spans + points + logs,
		}
	}}
}

// otelcolProc is a running collector.
type otelcolProc struct {
	addr string
	stop func(t *testing.T) string
}

const otelcolConfig = `receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %[1]s
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
  batch: {}
exporters:
  otlp_grpc:
    endpoint: %[2]s
    tls:
      insecure: true
extensions:
  health_check:
    endpoint: %[3]s
service:
  extensions: [health_check]
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %[4]s
  pipelines:
    traces: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp_grpc]}
    metrics: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp_grpc]}
    logs: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp_grpc]}
`

func startOtelcol(ctx context.Context, t *testing.T, dir, sink string) otelcolProc {
	t.Helper()
	bin, err := filepath.Abs(*flagOtelcol)
	if err != nil {
		t.Fatal(err)
	}
	recv, health, metrics := testkit.ClosedAddr(t), testkit.ClosedAddr(t), testkit.ClosedAddr(t)
	_, metricsPort, _ := net.SplitHostPort(metrics)
	cfg := filepath.Join(dir, "otelcol.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, otelcolConfig, recv, sink, health, metricsPort), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "otelcol.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-waited
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + health + "/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-waited:
			t.Fatalf("otelcol exited at start: %v\n%s", err, tail(logPath))
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("otelcol not healthy within 60s\n%s", tail(logPath))
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
	return otelcolProc{addr: recv, stop: func(t *testing.T) string {
		figures := scrapeOtelcol("http://" + metrics + "/metrics")
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-waited
			t.Error("otelcol did not stop within 30s of SIGTERM")
		}
		return figures
	}}
}

// scrapeOtelcol sums the collector's own counters of what it accepted,
// refused, sent and failed to send.
func scrapeOtelcol(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return "collector metrics: " + err.Error()
	}
	defer resp.Body.Close()
	sums := map[string]float64{}
	var order []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if i := strings.IndexByte(name, ' '); i >= 0 {
			name, rest = name[:i], name[i:]
		}
		if !strings.HasPrefix(name, "otelcol_receiver_") && !strings.HasPrefix(name, "otelcol_exporter_s") {
			continue
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(fields[0], &v); err != nil {
			continue
		}
		short := strings.TrimSuffix(strings.TrimPrefix(name, "otelcol_"), "_total")
		if _, ok := sums[short]; !ok {
			order = append(order, short)
		}
		sums[short] += v
	}
	var parts []string
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s=%.0f", k, sums[k]))
	}
	return "collector: " + strings.Join(parts, " ")
}
