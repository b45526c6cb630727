//go:build e2e

// Package e2e starts the whole heartbeat pipeline on free 127.0.0.1 ports —
// rsyslog and Prometheus from Debian, Jaeger (with its UI) and the collector
// built from their Go modules, Fluent Bit built from its release source with
// k8s/fluent-bit's config and an OTLP log store behind it, and two heartbeat
// sidecars whose output is logged as a container runtime logs it — for the
// end-to-end test (go test -tags e2e ./e2e) and for `make stack`.
package e2e

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Service names and pod names the sidecars report; the test looks for them
// in every backend.
const (
	ServiceName = "heartbeat"
	PodA        = "heartbeat-a"
	PodB        = "heartbeat-b"
	Namespace   = "e2e"
	// CheckInterval is the sidecars' check interval: short, so the test sees
	// many runs, yet well above the 1 s minimum.
	CheckInterval = 2 * time.Second
)

// Check names in sidecar A's checks file.
const (
	CheckPeer   = "peer-b"      // http to B's payload server
	CheckClosed = "closed-port" // tcp to a port nothing listens on: fails
	CheckTCPUp  = "tcp-up"      // tcp to Prometheus' port: succeeds
	CheckPeerA  = "peer-a"      // B's check of A
)

// ErrStartup reports a component that did not come up.
var ErrStartup = errors.New("component did not start")

// Options configures Start.
type Options struct {
	// Root is the repository root: bin/, otel-collector.yaml, collector/.
	Root string
	// Work holds configs, data and logs; Start empties it first.
	Work string
	// Log receives one line per started component; nil discards.
	Log io.Writer
	// ScrapeInterval of Prometheus (default 1s).
	ScrapeInterval time.Duration
	// NoSidecars starts only the pipeline, for checking it on its own.
	NoSidecars bool
	// Detach lets the processes outlive this one (make stack). Otherwise
	// the kernel kills them when it exits, even if a test panics or times
	// out before its cleanup runs.
	Detach bool
}

// Ports are the ports Start picked; all on 127.0.0.1.
type Ports struct {
	RsyslogTCP, RsyslogUDP                     int
	Prometheus                                 int
	JaegerOTLP, JaegerOTLPHTTP                 int
	JaegerQuery, JaegerQueryGRPC, JaegerHealth int
	OTLPGRPC, OTLPHTTP, Health                 int
	PromExporter, CollectorMetrics             int
	FluentBit, FluentBitHTTP, LogStore         int
	SidecarA, SidecarB                         int
	Closed                                     int
}

// Proc is one started process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	// Stdout and Stderr are the files its output goes to.
	Stdout, Stderr string
}

// Path returns the program the process runs (its argv[0]).
func (p *Proc) Path() string { return p.cmd.Args[0] }

// Pid returns the process id (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stack is a running pipeline.
type Stack struct {
	opts  Options
	Ports Ports
	// Files the components write that the test reads: rsyslog's, and the
	// log store's records from Fluent Bit's output.
	SyslogFile, LogStoreFile string
	// NoFluentBit and NoJaegerUI say why that part is missing ("" when it
	// runs): bin/fluent-bit or bin/jaeger-ui absent (scripts/fluent-bit.sh,
	// scripts/jaeger-ui.sh).
	NoFluentBit, NoJaegerUI string
	procs                   []*Proc
	collectorEnv            []string
	used                    map[int]bool
}

// Start picks ports, writes every config and starts the components in
// dependency order, waiting for each to be ready. On error it stops what it
// started.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.ScrapeInterval == 0 {
		o.ScrapeInterval = time.Second
	}
	if o.Root, err = filepath.Abs(o.Root); err != nil {
		return nil, err
	}
	if o.Work, err = filepath.Abs(o.Work); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(o.Work); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Work, 0o755); err != nil {
		return nil, err
	}
	s = &Stack{opts: o, used: map[int]bool{}}
	defer func() {
		if err != nil {
			s.Stop()
			s = nil
		}
	}()
	if err := s.pickPorts(); err != nil {
		return nil, err
	}
	s.SyslogFile = s.path("syslog/messages.log")
	s.LogStoreFile = s.path("logstore/records.jsonl")
	if _, err := os.Stat(s.bin("bin/fluent-bit")); err != nil {
		s.NoFluentBit = "bin/fluent-bit missing (scripts/fluent-bit.sh: set $FLUENT_BIT, put fluent-bit on PATH, or provide ../shared/vendor/fluent-bit)"
	}
	if _, err := os.Stat(s.bin("bin/jaeger-ui/index.html")); err != nil {
		s.NoJaegerUI = "bin/jaeger-ui missing (scripts/jaeger-ui.sh unpacks it from ../shared/vendor/jaeger-ui): Jaeger serves its query API alone"
	}

	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"log-store", s.startLogStore},
		{"fluent-bit", s.StartFluentBit},
		{"rsyslog", s.startRsyslog},
		{"prometheus", s.startPrometheus},
		{"jaeger", s.StartJaeger},
		{"collector", s.StartCollector},
		{"sidecar-b", func(ctx context.Context) error { return s.startSidecar(ctx, "sidecar-b") }},
		{"sidecar-a", func(ctx context.Context) error { return s.startSidecar(ctx, "sidecar-a") }},
	}
	if o.NoSidecars {
		steps = steps[:len(steps)-2]
	}
	for _, step := range steps {
		if step.name == "fluent-bit" && s.NoFluentBit != "" {
			fmt.Fprintf(o.Log, "skipped %-14s %s\n", step.name, s.NoFluentBit)
			continue
		}
		t0 := time.Now()
		if err := step.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", step.name, err)
		}
		fmt.Fprintf(o.Log, "started %-14s in %v\n", step.name, time.Since(t0).Round(time.Millisecond))
	}
	return s, nil
}

// URLs lists what a person would open, in start order.
func (s *Stack) URLs() [][2]string {
	p := s.Ports
	u := func(port int, path string) string { return "http://127.0.0.1:" + strconv.Itoa(port) + path }
	var out [][2]string
	if !s.opts.NoSidecars {
		out = append(out, [][2]string{
			{"sidecar A /status", u(p.SidecarA, "/status")},
			{"sidecar B payload", u(p.SidecarB, "/heartbeat/65536")},
		}...)
	}
	if s.NoJaegerUI == "" {
		out = append(out, [2]string{"Jaeger UI", u(p.JaegerQuery, "/search?service="+ServiceName)})
	} else {
		out = append(out, [2]string{"Jaeger UI", "none: " + s.NoJaegerUI})
	}
	fluentBit := s.LogStoreFile
	if s.NoFluentBit != "" {
		fluentBit = "none: " + s.NoFluentBit
	}
	return append(out, [][2]string{
		{"Prometheus", u(p.Prometheus, "/graph")},
		{"Jaeger query API", u(p.JaegerQuery, "/api/traces?service="+ServiceName)},
		{"collector /metrics (exporter)", u(p.PromExporter, "/metrics")},
		{"collector health", u(p.Health, "/")},
		{"collector OTLP/gRPC", "127.0.0.1:" + strconv.Itoa(p.OTLPGRPC)},
		{"collector OTLP/HTTP", u(p.OTLPHTTP, "/v1/logs")},
		{"syslog file (rsyslog)", s.SyslogFile},
		{"Fluent Bit output (log store)", fluentBit},
		{"logs", s.opts.Work},
		{"your own sidecar", fmt.Sprintf("OTEL_EXPORTER_OTLP_ENDPOINT=http://%s HEARTBEAT_SYSLOG_ADDR=udp://%s", addr(p.OTLPGRPC), addr(p.RsyslogUDP))},
	}...)
}

// Procs returns the started processes.
func (s *Stack) Procs() []*Proc { return s.procs }

// Proc returns the process named name, or nil.
func (s *Stack) Proc(name string) *Proc {
	for i := len(s.procs) - 1; i >= 0; i-- {
		if s.procs[i].Name == name {
			return s.procs[i]
		}
	}
	return nil
}

// Stop ends every process, sidecars first (they flush telemetry to the
// collector on the way out) and then the rest newest first: SIGTERM to its
// process group, then SIGKILL after 5 s.
func (s *Stack) Stop() {
	order := slices.Clone(s.procs)
	slices.Reverse(order)
	slices.SortStableFunc(order, func(a, b *Proc) int {
		return cmp.Compare(sidecarRank(a), sidecarRank(b))
	})
	for _, p := range order {
		t0 := time.Now()
		stopProc(p, syscall.SIGTERM, 5*time.Second)
		if d := time.Since(t0); d > time.Second {
			fmt.Fprintf(s.opts.Log, "stopping %s took %v\n", p.Name, d.Round(100*time.Millisecond))
		}
	}
}

func sidecarRank(p *Proc) int {
	if strings.HasPrefix(p.Name, "sidecar-") {
		return 0
	}
	return 1
}

// KillCollector SIGKILLs the collector, as a crash would, and waits for it to go.
func (s *Stack) KillCollector() error {
	p := s.Proc("collector")
	if p == nil {
		return errors.New("no collector running")
	}
	stopProc(p, syscall.SIGKILL, 5*time.Second)
	if exited, _ := p.Exited(); !exited {
		return errors.New("collector did not exit after SIGKILL")
	}
	return nil
}

// Terminate sends SIGTERM to the newest process named name, as the kubelet
// does at a pod's deletion, and waits up to grace for it to exit before
// SIGKILL. It returns how long the exit took and whether grace ran out.
func (s *Stack) Terminate(name string, grace time.Duration) (time.Duration, bool, error) {
	p := s.Proc(name)
	if p == nil {
		return 0, false, fmt.Errorf("no %s running", name)
	}
	if exited, _ := p.Exited(); exited {
		return 0, false, fmt.Errorf("%s had already exited", name)
	}
	t0 := time.Now()
	stopProc(p, syscall.SIGTERM, grace)
	took := time.Since(t0)
	return took, took >= grace, nil
}

func stopProc(p *Proc, sig syscall.Signal, grace time.Duration) {
	if exited, _ := p.Exited(); exited {
		return
	}
	_ = syscall.Kill(-p.Pid(), sig)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
}

func (s *Stack) path(rel string) string { return filepath.Join(s.opts.Work, rel) }

func (s *Stack) bin(rel string) string { return filepath.Join(s.opts.Root, rel) }

// freePort asks the kernel for a free port and remembers it, so one run
// never hands out the same port twice.
func (s *Stack) freePort() (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// rsyslog's imudp shares the number space: check UDP too.
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		u.Close()
		if !s.used[port] {
			s.used[port] = true
			return port, nil
		}
	}
	return 0, errors.New("no free port found")
}

func (s *Stack) pickPorts() error {
	p := &s.Ports
	for _, f := range []*int{
		&p.RsyslogTCP, &p.RsyslogUDP, &p.Prometheus,
		&p.JaegerOTLP, &p.JaegerOTLPHTTP, &p.JaegerQuery, &p.JaegerQueryGRPC, &p.JaegerHealth,
		&p.OTLPGRPC, &p.OTLPHTTP, &p.Health, &p.PromExporter, &p.CollectorMetrics,
		&p.FluentBit, &p.FluentBitHTTP, &p.LogStore, &p.SidecarA, &p.SidecarB, &p.Closed,
	} {
		var err error
		if *f, err = s.freePort(); err != nil {
			return err
		}
	}
	return nil
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func (s *Stack) writeFile(rel, content string) (string, error) {
	p := s.path(rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	return p, os.WriteFile(p, []byte(content), 0o644)
}

// start runs bin with args in its own process group, output to files in Work.
func (s *Stack) start(name string, env []string, bin string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, done: make(chan struct{}),
		Stdout: s.path("logs/" + name + ".stdout.log"), Stderr: s.path("logs/" + name + ".stderr.log")}
	if err := os.MkdirAll(filepath.Dir(p.Stdout), 0o755); err != nil {
		return nil, err
	}
	out, err := os.OpenFile(p.Stdout, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	errf, err := os.OpenFile(p.Stderr, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		out.Close()
		return nil, err
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = out, errf
	p.cmd.Dir = s.opts.Work
	// Own process group: Stop can kill children too, and a Ctrl-C to the
	// launcher of a detached stack does not reach the components.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !s.opts.Detach {
		p.cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	err = p.cmd.Start()
	out.Close()
	errf.Close()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// waitReady polls ready until it succeeds, the process exits or the deadline passes.
func waitReady(ctx context.Context, p *Proc, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w: %s exited (%v); stderr: %s", ErrStartup, p.Name, p.err, tail(p.Stderr, 20))
		case <-ctx.Done():
			return fmt.Errorf("%w: %s not ready after %v: %v; stderr: %s", ErrStartup, p.Name, timeout, last, tail(p.Stderr, 20))
		case <-tick.C:
		}
	}
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\n" + strings.Join(lines, "\n")
}

func httpOK(url string) func(context.Context) error {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

// startLogStore runs the log store behind Fluent Bit as a child process
// (this executable, re-run with LogStoreEnv set) so it outlives a detached
// launcher.
func (s *Stack) startLogStore(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := s.start("log-store", []string{LogStoreEnv + "=" + addr(s.Ports.LogStore) + "," + s.LogStoreFile}, self)
	if err != nil {
		return err
	}
	return waitReady(ctx, p, 10*time.Second, httpOK("http://"+addr(s.Ports.LogStore)+"/healthz"))
}

// rsyslogConf receives the collector's RFC 5424 stream on imtcp and the
// sidecars' direct alerts on imudp, and writes both to one file with the
// input's name first, so the test can tell the two paths apart. No imuxsock,
// no system files: it runs beside any system syslog.
const rsyslogConf = `global(workDirectory="{{work}}")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{{tcp}}" name="collector")
input(type="imudp" address="127.0.0.1" port="{{udp}}" name="sidecar")
template(name="heartbeatLine" type="string"
  string="%timegenerated:::date-rfc3339% input=%inputname% severity=%syslogseverity-text% facility=%syslogfacility-text% host=%hostname% app=%app-name% procid=%procid% msgid=%msgid% sd=%structured-data% msg=%msg%\n")
action(type="omfile" file="{{file}}" template="heartbeatLine")
`

func (s *Stack) startRsyslog(ctx context.Context) error {
	work := s.path("syslog/work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return err
	}
	conf, err := s.writeFile("syslog/rsyslog.conf", strings.NewReplacer(
		"{{work}}", work, "{{tcp}}", strconv.Itoa(s.Ports.RsyslogTCP),
		"{{udp}}", strconv.Itoa(s.Ports.RsyslogUDP), "{{file}}", s.SyslogFile).Replace(rsyslogConf))
	if err != nil {
		return err
	}
	p, err := s.start("rsyslog", nil, "/usr/sbin/rsyslogd", "-n", "-f", conf, "-i", s.path("syslog/rsyslogd.pid"))
	if err != nil {
		return err
	}
	// Ready means both inputs deliver to the file: send one line each way.
	marker := fmt.Sprintf("e2e-ready-%d", time.Now().UnixNano())
	return waitReady(ctx, p, 15*time.Second, func(context.Context) error {
		for _, network := range []string{"udp", "tcp"} {
			port := s.Ports.RsyslogUDP
			if network == "tcp" {
				port = s.Ports.RsyslogTCP
			}
			c, err := net.DialTimeout(network, addr(port), time.Second)
			if err != nil {
				return err
			}
			fmt.Fprintf(c, "<14>1 %s e2e e2e - - - %s-%s\n", time.Now().UTC().Format(time.RFC3339), marker, network)
			c.Close()
		}
		for _, network := range []string{"udp", "tcp"} {
			if !fileContains(s.SyslogFile, marker+"-"+network) {
				return fmt.Errorf("marker not yet in %s", s.SyslogFile)
			}
		}
		return nil
	})
}

func fileContains(path, sub string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			return true
		}
	}
	return false
}

func (s *Stack) startPrometheus(ctx context.Context) error {
	conf, err := s.writeFile("prometheus/prometheus.yml", fmt.Sprintf(`global:
  scrape_interval: %[1]s
  scrape_timeout: %[1]s
scrape_configs:
  # The collector's prometheus exporter: the sidecars' metrics.
  - job_name: otelcol
    static_configs: [{targets: ["%[2]s"]}]
  # The collector's own metrics (queue sizes, sent and failed counts).
  - job_name: otelcol-self
    static_configs: [{targets: ["%[3]s"]}]
`, s.opts.ScrapeInterval, addr(s.Ports.PromExporter), addr(s.Ports.CollectorMetrics)))
	if err != nil {
		return err
	}
	p, err := s.start("prometheus", nil, "/usr/bin/prometheus",
		"--config.file="+conf,
		"--storage.tsdb.path="+s.path("prometheus/data"),
		"--web.listen-address="+addr(s.Ports.Prometheus),
		"--web.enable-remote-write-receiver",
		"--enable-feature=exemplar-storage",
		"--log.level=warn")
	if err != nil {
		return err
	}
	return waitReady(ctx, p, 30*time.Second, httpOK("http://"+addr(s.Ports.Prometheus)+"/-/ready"))
}

// StartJaeger starts (or restarts, on the same ports) Jaeger, with the
// built UI when there is one. Its storage is in memory: a restart empties it.
func (s *Stack) StartJaeger(ctx context.Context) error {
	p := s.Ports
	env := []string{
		"JAEGER_OTLP_GRPC_ENDPOINT=" + addr(p.JaegerOTLP),
		"JAEGER_OTLP_HTTP_ENDPOINT=" + addr(p.JaegerOTLPHTTP),
		"JAEGER_QUERY_HTTP_ENDPOINT=" + addr(p.JaegerQuery),
		"JAEGER_QUERY_GRPC_ENDPOINT=" + addr(p.JaegerQueryGRPC),
		"JAEGER_HEALTH_ENDPOINT=" + addr(p.JaegerHealth),
	}
	if s.NoJaegerUI == "" {
		env = append(env, "JAEGER_UI_ASSETS_PATH="+s.bin("bin/jaeger-ui"))
	}
	proc, err := s.start("jaeger", env, s.bin("bin/jaeger"), "--config", s.bin("collector/jaeger/config.yaml"))
	if err != nil {
		return err
	}
	return waitReady(ctx, proc, 60*time.Second, httpOK("http://"+addr(p.JaegerQuery)+"/api/services"))
}

// StartCollector starts (or restarts, on the same ports) the collector.
func (s *Stack) StartCollector(ctx context.Context) error {
	p := s.Ports
	if s.collectorEnv == nil {
		s.collectorEnv = []string{
			"OTLP_GRPC_ENDPOINT=" + addr(p.OTLPGRPC),
			"OTLP_HTTP_ENDPOINT=" + addr(p.OTLPHTTP),
			"HEALTH_CHECK_ENDPOINT=" + addr(p.Health),
			"SYSLOG_ENDPOINT=127.0.0.1",
			"SYSLOG_PORT=" + strconv.Itoa(p.RsyslogTCP),
			"FLUENTBIT_OTLP_ENDPOINT=http://" + addr(p.FluentBit),
			"PROMETHEUS_EXPORTER_ENDPOINT=" + addr(p.PromExporter),
			"PROMETHEUS_REMOTE_WRITE_ENDPOINT=http://" + addr(p.Prometheus) + "/api/v1/write",
			"JAEGER_OTLP_ENDPOINT=" + addr(p.JaegerOTLP),
			"OTELCOL_METRICS_HOST=127.0.0.1",
			"OTELCOL_METRICS_PORT=" + strconv.Itoa(p.CollectorMetrics),
			// Kept across restarts: the persistent sending queues.
			"OTELCOL_STORAGE_DIR=" + s.path("collector/storage"),
		}
	}
	proc, err := s.start("collector", s.collectorEnv, s.bin("bin/otelcol-heartbeat"), "--config", s.bin("otel-collector.yaml"))
	if err != nil {
		return err
	}
	return waitReady(ctx, proc, 60*time.Second, httpOK("http://"+addr(p.Health)+"/"))
}

// sidecarChecks are the checks files: A probes B's payload server, a closed
// port and an open one; B probes A, so both sidecars run checks.
func (s *Stack) sidecarChecks(name string) string {
	if name == "sidecar-b" {
		return fmt.Sprintf(`defaults:
  interval: %s
  timeout: 1s
checks:
  - name: %s
    type: http
    target: http://%s/heartbeat/1024
`, CheckInterval, CheckPeerA, addr(s.Ports.SidecarA))
	}
	return fmt.Sprintf(`defaults:
  interval: %s
  timeout: 1s
checks:
  - name: %s
    type: http
    target: http://%s/heartbeat/65536
  - name: %s
    type: tcp
    target: %s
  - name: %s
    type: tcp
    target: %s
`, CheckInterval, CheckPeer, addr(s.Ports.SidecarB), CheckClosed, addr(s.Ports.Closed), CheckTCPUp, addr(s.Ports.Prometheus))
}

func (s *Stack) startSidecar(ctx context.Context, name string) error {
	port, pod := s.Ports.SidecarA, PodA
	if name == "sidecar-b" {
		port, pod = s.Ports.SidecarB, PodB
	}
	checks, err := s.writeFile(name+"/checks.yaml", s.sidecarChecks(name))
	if err != nil {
		return err
	}
	uid := "00000000-0000-0000-0000-00000000000" + strings.TrimPrefix(name, "sidecar-")
	// Its output goes where the kubelet's container runtime puts it, for
	// Fluent Bit's tail input.
	logFile, err := s.containerLog(pod, uid, "heartbeat")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	p, err := s.start(name, []string{
		CRILogEnv + "=" + logFile,
		"OTEL_SERVICE_NAME=" + ServiceName,
		"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=" + Namespace,
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + addr(s.Ports.OTLPGRPC),
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
		"OTEL_TRACES_SAMPLER=parentbased_always_on",
		"OTEL_METRIC_EXPORT_INTERVAL=1000",
		"OTEL_BSP_SCHEDULE_DELAY=500",
		"OTEL_BLRP_SCHEDULE_DELAY=500",
		"POD_NAME=" + pod,
		"POD_NAMESPACE=" + Namespace,
		"NODE_NAME=e2e-node",
		"POD_UID=" + uid,
		"CONTAINER_NAME=heartbeat",
	}, self, s.bin("bin/heartbeat"), "serve",
		"--listen", addr(port),
		"--config", checks,
		"--syslog-addr", "udp://"+addr(s.Ports.RsyslogUDP),
		"--log")
	if err != nil {
		return err
	}
	return waitReady(ctx, p, 20*time.Second, httpOK("http://"+addr(port)+"/readyz"))
}
