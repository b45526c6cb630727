// Command schedbench drives the scheduler benchmark of scripts/bench-scheduler.sh:
// N HTTP checks at a fixed interval against local payload servers, measured
// in-process, and the same probe rate pushed through
// prometheus-blackbox-exporter's /probe endpoint, measured from /proc.
//
//	schedbench serve -n 8 -urls FILE          payload servers on 127.0.0.1 until SIGTERM
//	schedbench checks -n 10000 -targets FILE  our Runner; prints one result line
//	schedbench blackbox -bb URL -pid PID -rate 1000 -targets FILE
//	schedbench freeport                       prints a free 127.0.0.1 port
//
// Result lines are "key=value ..." so the wrapper script can tabulate them.
// Every address used is on 127.0.0.1; every mode stops by itself (serve on
// SIGTERM or when its parent dies).
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks"
	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog"
	"github.com/heartbeat-sidecar/heartbeat/telemetry"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: schedbench serve|checks|blackbox|freeport [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "checks":
		err = runChecks(os.Args[2:])
	case "blackbox":
		err = runBlackbox(os.Args[2:])
	case "freeport":
		err = freePort()
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedbench:", err)
		os.Exit(1)
	}
}

func freePort() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	fmt.Println(port)
	return nil
}

// serve runs n payload servers (GET /heartbeat/{n}: n bytes, Server-Timing)
// and writes their base URLs, one a line, to the -urls file.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	n := fs.Int("n", 8, "payload servers")
	urls := fs.String("urls", "", "file to write the servers' base URLs to")
	_ = fs.Parse(args)
	const pattern = "0123456789ABCDEF"
	buf := bytes.Repeat([]byte(pattern), (1<<20)/len(pattern))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		size, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/heartbeat/"))
		if err != nil || size < 1 || size > len(buf) {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Header().Set("Server-Timing", fmt.Sprintf("app;dur=%.3f", float64(time.Since(start).Microseconds())/1000))
		_, _ = w.Write(buf[:size])
	})
	var lines []string
	for range *n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		lines = append(lines, "http://"+ln.Addr().String())
	}
	tmp := *urls + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, *urls); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Stop with the wrapper even if it is killed without cleaning up.
	ppid := os.Getppid()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if os.Getppid() != ppid {
				return nil
			}
		}
	}
}

func readTargets(path string, size int) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Fields(string(data)) {
		out = append(out, fmt.Sprintf("%s/heartbeat/%d", l, size))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s lists no targets", path)
	}
	return out, nil
}

// runChecks runs n checks through checks.Runner for the duration, with the
// telemetry production uses (telemetry.Setup from the OTEL_* environment:
// every run traced, spans, metrics and logs exported over OTLP), and prints
// CPU per 1,000 runs, peak RSS and lateness percentiles. The figures are
// read in-process by a tee on three instruments (see tee.go); the SDK sees
// every point as in production.
func runChecks(args []string) error {
	fs := flag.NewFlagSet("checks", flag.ExitOnError)
	n := fs.Int("n", 1000, "checks")
	interval := fs.Duration("interval", 10*time.Second, "check interval")
	duration := fs.Duration("duration", 60*time.Second, "how long to run")
	targets := fs.String("targets", "", "file of payload server base URLs")
	size := fs.Int("size", 1, "payload size requested")
	maxConc := fs.Int("max-concurrent", checks.DefaultMaxConcurrent, "global concurrency limit")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run here")
	memProfile := fs.String("memprofile", "", "write a heap profile at the end here")
	history := fs.Int("status-history", checks.DefaultStatusHistory, "runs of history each check keeps for /status (--status-history)")
	_ = fs.Parse(args)
	stopCPU, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stopCPU()

	urls, err := readTargets(*targets, *size)
	if err != nil {
		return err
	}
	f := &config.File{}
	for i := range *n {
		c := config.Check{
			Name: fmt.Sprintf("c%05d", i), Type: config.TypeHTTP, Target: urls[i%len(urls)],
			Interval: *interval, Timeout: 5 * time.Second, Jitter: 0.1,
			FailureThreshold: 1, SuccessThreshold: 1,
		}
		c.ApplyDefaults()
		f.Checks = append(f.Checks, c)
	}
	if err := f.Validate(); err != nil {
		return err
	}

	tel, err := telemetry.Setup(context.Background(), telemetry.Options{
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	t := newTee()
	r, err := checks.New(checks.Settings{
		MeterProvider: teeProvider{MeterProvider: tel.MeterProvider, t: t}, TracerProvider: tel.TracerProvider,
		LoggerProvider: tel.LoggerProvider, Propagator: tel.Propagator, MaxConcurrent: *maxConc, StatusHistory: *history,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Syslog: syslog.Config{Addr: "none"},
	})
	if err != nil {
		return err
	}
	if err := r.Apply(f); err != nil {
		return err
	}
	cpu0 := selfCPU()
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	if err := r.Run(ctx); err != nil {
		return err
	}
	if err := writeHeapProfile(*memProfile); err != nil {
		return err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	// The live heap after a collection, with the Runner (and so every
	// check's history) still reachable: what -status-history costs.
	runtime.GC()
	var live runtime.MemStats
	runtime.ReadMemStats(&live)
	fmt.Fprintf(os.Stderr, "schedbench: live heap %.1f MB with %d runs of history per check\n", float64(live.HeapAlloc)/(1<<20), *history)
	runtime.KeepAlive(r)
	fmt.Fprintf(os.Stderr, "schedbench: heap in use %.1f MB, heap sys %.1f MB, stacks %.1f MB, goroutines %d, GC cycles %d\n",
		float64(ms.HeapInuse)/(1<<20), float64(ms.HeapSys)/(1<<20), float64(ms.StackSys)/(1<<20), runtime.NumGoroutine(), ms.NumGC)

	// The final flush is part of the run's cost, and of its memory.
	sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer scancel()
	if err := tel.Shutdown(sctx); err != nil {
		fmt.Fprintln(os.Stderr, "schedbench: telemetry shutdown:", err)
	}
	cpu := selfCPU() - cpu0
	runs := map[string]int64{}
	for k, v := range t.runs {
		runs[k] = v.Load()
	}
	latCount := t.lateness.n.Load()
	p50, p99, pmax := t.lateness.quantile(0.5), t.lateness.quantile(0.99), t.lateness.max()
	probeP50, probeP99 := t.duration.quantile(0.5), t.duration.quantile(0.99)
	total := runs["success"] + runs["failure"]
	fmt.Printf("mode=checks checks=%d interval=%s duration=%s runs=%d failures=%d skipped=%d cpu_s=%.2f cpu_s_per_1000=%.3f peak_rss_mb=%.1f lateness_n=%d lateness_p50_ms=%.2f lateness_p99_ms=%.2f lateness_max_ms=%.1f probe_p50_ms=%.2f probe_p99_ms=%.2f\n",
		*n, *interval, *duration, total, runs["failure"], runs["skipped"], cpu, perThousand(cpu, total),
		float64(peakRSSKB("self"))/1024, latCount, p50*1000, p99*1000, pmax*1000, probeP50*1000, probeP99*1000)
	return nil
}

func perThousand(cpu float64, n int64) float64 {
	if n == 0 {
		return math.NaN()
	}
	return cpu / float64(n) * 1000
}

// runBlackbox sends rate probes a second through blackbox_exporter's /probe
// endpoint for the duration and reports the exporter's CPU per 1,000 probes.
func runBlackbox(args []string) error {
	fs := flag.NewFlagSet("blackbox", flag.ExitOnError)
	bb := fs.String("bb", "", "blackbox_exporter base URL")
	pid := fs.Int("pid", 0, "blackbox_exporter PID (for /proc)")
	rate := fs.Int("rate", 100, "probes per second")
	duration := fs.Duration("duration", 60*time.Second, "how long to run")
	targets := fs.String("targets", "", "file of payload server base URLs")
	size := fs.Int("size", 1, "payload size requested")
	module := fs.String("module", "http_2xx", "blackbox module")
	conc := fs.Int("max-concurrent", 256, "requests in flight at most")
	_ = fs.Parse(args)
	urls, err := readTargets(*targets, *size)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc, Proxy: nil,
	}}
	probe := func(target string) error {
		resp, err := client.Get(*bb + "/probe?module=" + *module + "&target=" + target)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("\nprobe_success 1")) {
			return fmt.Errorf("probe of %s failed: %s", target, firstLines(body))
		}
		return nil
	}
	if err := probe(urls[0]); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}

	cpu0, err := procCPU(*pid)
	if err != nil {
		return err
	}
	var (
		sent, failed atomic.Int64
		wg           sync.WaitGroup
		sem          = make(chan struct{}, *conc)
		firstErr     atomic.Value
	)
	gap := time.Second / time.Duration(*rate)
	start := time.Now()
	next := start
	for i := 0; time.Since(start) < *duration; i++ {
		next = next.Add(gap)
		if d := time.Until(next); d > 0 {
			time.Sleep(d) // pacing the load, not waiting for a signal
		}
		sem <- struct{}{}
		wg.Add(1)
		sent.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := probe(urls[i%len(urls)]); err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, err := procCPU(*pid)
	if err != nil {
		return err
	}
	cpu := cpu1 - cpu0
	if e, ok := firstErr.Load().(error); ok {
		fmt.Fprintln(os.Stderr, "schedbench: first failure:", e)
	}
	fmt.Printf("mode=blackbox rate=%d duration=%s probes=%d failures=%d achieved_rate=%.0f cpu_s=%.2f cpu_s_per_1000=%.3f peak_rss_mb=%.1f\n",
		*rate, *duration, sent.Load(), failed.Load(), float64(sent.Load())/elapsed.Seconds(), cpu,
		perThousand(cpu, sent.Load()), float64(peakRSSKB(strconv.Itoa(*pid)))/1024)
	return nil
}

func firstLines(b []byte) string {
	s := string(b)
	if len(s) > 300 {
		s = s[:300]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// selfCPU is this process's user+system CPU seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return math.NaN()
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// procCPU reads utime+stime of pid from /proc/PID/stat, in seconds.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	const clkTck = 100 // USER_HZ on Linux
	return (ut + st) / clkTck, nil
}

// peakRSSKB reads VmHWM (peak resident set) of /proc/<who>/status, in KiB.
func peakRSSKB(who string) int64 {
	fh, err := os.Open("/proc/" + who + "/status")
	if err != nil {
		return 0
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// startCPUProfile profiles the CPU into path until stop is called; "" profiles nothing.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(fh); err != nil {
		fh.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		fh.Close()
	}, nil
}

// writeHeapProfile writes the heap profile to path; "" writes nothing.
func writeHeapProfile(path string) error {
	if path == "" {
		return nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(fh); err != nil {
		fh.Close()
		return err
	}
	return fh.Close()
}
