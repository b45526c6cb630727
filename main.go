// Command heartbeat is an OpenTelemetry-native network heartbeat sidecar: a
// payload server that answers /heartbeat/{n} with n bytes, and a probe
// scheduler that checks HTTP, TCP, TLS, DNS and gRPC targets.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks"
	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
	"github.com/heartbeat-sidecar/heartbeat/checks/syslog"
	"github.com/heartbeat-sidecar/heartbeat/payload"
	"github.com/heartbeat-sidecar/heartbeat/telemetry"
)

// version is stamped by the Makefile with -ldflags "-X main.version=…".
var version = "0.0.0-dev"

// envPrefix names the environment variables that back every flag.
const envPrefix = "HEARTBEAT_"

// Exit codes, as promtool and otelcol use them.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches the subcommand; serve is the default.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	switch {
	case len(args) > 0 && !strings.HasPrefix(args[0], "-"):
		cmd, args = args[0], args[1:]
	case len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help"}, args[0]):
		// Help asked before any command shows the commands; serve's flags
		// are one "heartbeat serve -h" away.
		cmd = "help"
	}
	switch cmd {
	case "serve":
		return serveCmd(ctx, args, stdout, stderr)
	case "check":
		return checkCmd(ctx, args, stdout, stderr)
	case "validate":
		return validateCmd(args, stdout, stderr)
	case "version":
		fs := newFlagSet("version", "Print the version.", stderr)
		if code, ok := parse(fs, args, stderr); !ok {
			return code
		}
		fmt.Fprintln(stdout, version)
		return exitOK
	case "help":
		usage(stdout)
		return exitOK
	default:
		fmt.Fprintf(stderr, "heartbeat: unknown command %q\n", cmd)
		usage(stderr)
		return exitUsage
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: heartbeat <command> [flags]

commands:
  serve      run the payload server and the checks (default)
  check      run every check once, print the results; exit 0 if all passed, 1 if not, 2 on a bad config
  validate   check a checks file; exit 0 if it is valid, 2 if not
  version    print the version

Every flag can also be set as an environment variable: --max-size is HEARTBEAT_MAX_SIZE.
Run "heartbeat <command> -h" for a command's flags.
`)
}

// newFlagSet makes a flag set whose -h names the command and the env form of each flag.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: heartbeat %s [flags]\n\n%s\n\nflags (each also from the environment, e.g. --listen from %sLISTEN):\n", name, summary, envPrefix)
		fs.PrintDefaults()
	}
	return fs
}

// envName is the environment variable that backs a flag.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parse applies environment variables, then the command line, which wins.
// ok is false when the caller should exit with code.
func parse(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v, set := os.LookupEnv(envName(f.Name)); set && envErr == nil {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		fmt.Fprintf(stderr, "heartbeat %s: %v\n", fs.Name(), envErr)
		return exitUsage, false
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "heartbeat %s: unexpected arguments: %s\n", fs.Name(), strings.Join(fs.Args(), " "))
		return exitUsage, false
	}
	return exitOK, true
}

// serveOptions are the serve command's flags.
type serveOptions struct {
	listen          string
	adminListen     string
	minSize         int64
	maxSize         int64
	maxUpload       int64
	accessLog       bool
	tlsCert         string
	tlsKey          string
	shutdownTimeout time.Duration
	drainDelay      time.Duration
	writeTimeout    time.Duration
	config          string
	syslogAddr      string
	maxConcurrent   int
	peersResolver   string
	statusHistory   int
	traceURL        string
}

// defaultConfigPath is where GoHeartbeat kept its checks; used when it exists and --config is not given.
const defaultConfigPath = "/etc/heartbeat.config"

// configFlag registers --config, shared by serve, check and validate.
func configFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "config", "", "checks file, YAML or GoHeartbeat JSON (default "+defaultConfigPath+" if it exists)")
}

// resolveConfig applies the GoHeartbeat default path; "" means no checks.
func resolveConfig(path string) string {
	if path != "" {
		return path
	}
	if _, err := os.Stat(defaultConfigPath); err == nil {
		return defaultConfigPath
	}
	return ""
}

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "Run the payload server and the checks.", stderr)
	var o serveOptions
	fs.StringVar(&o.listen, "listen", ":8080", "address to serve the payload, health and status endpoints on")
	fs.StringVar(&o.adminListen, "admin-listen", "", "address for pprof (e.g. 127.0.0.1:6060); empty turns it off")
	fs.Int64Var(&o.minSize, "min-size", payload.DefaultMinSize, "smallest /heartbeat/{n} size served")
	fs.Int64Var(&o.maxSize, "max-size", payload.DefaultMaxSize, "largest /heartbeat/{n} size served")
	fs.Int64Var(&o.maxUpload, "max-upload", payload.DefaultMaxUpload, "largest request body POST and PUT accept")
	fs.BoolVar(&o.accessLog, "log", false, "write one tab-delimited line per request to stdout")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate file; with --tls-key serves HTTPS")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key file")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "time in-flight requests get to finish on SIGTERM")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "time to keep serving, reporting not ready, after SIGTERM and before closing listeners")
	fs.DurationVar(&o.writeTimeout, "write-timeout", payload.DefaultWriteTimeout, "time a client may take to accept each chunk of a large body")
	configFlag(fs, &o.config)
	fs.StringVar(&o.syslogAddr, "syslog-addr", "", `where check alerts go: "" for the local syslog (/dev/log), udp://host:port, tcp://host:port, unix:///path, or none`)
	fs.IntVar(&o.maxConcurrent, "max-concurrent-checks", checks.DefaultMaxConcurrent, "probes allowed in flight at once, across all checks")
	peersResolverFlag(fs, &o.peersResolver)
	fs.IntVar(&o.statusHistory, "status-history", checks.DefaultStatusHistory, "runs of each check /status keeps and shows")
	fs.StringVar(&o.traceURL, "trace-url", "", "link failed runs on /status to a trace UI: a URL with "+checks.TraceIDPlaceholder+", e.g. http://jaeger:16686/trace/"+checks.TraceIDPlaceholder)
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		fmt.Fprintln(stderr, "heartbeat serve: --tls-cert and --tls-key go together")
		return exitUsage
	}
	if err := (checks.PageOptions{TraceURL: o.traceURL}).Validate(); err != nil {
		fmt.Fprintln(stderr, "heartbeat serve: --trace-url:", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// After the first signal starts the drain, a second one ends the process at once.
	context.AfterFunc(ctx, stop)
	if err := serve(ctx, o, stdout, logger, nil); err != nil {
		logger.Error("heartbeat stopped", "err", err)
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

// errUsage marks errors caused by the operator's settings rather than the run.
var errUsage = errors.New("invalid settings")

// serve runs until ctx is done, then drains and flushes telemetry. listening,
// if set, is called with the bound address once requests are accepted.
func serve(ctx context.Context, o serveOptions, stdout io.Writer, logger *slog.Logger, listening func(addr string)) error {
	tel, err := telemetry.Setup(ctx, telemetry.Options{ServiceVersion: version, Logger: logger})
	if err != nil {
		return fmt.Errorf("%w: telemetry: %w", errUsage, err)
	}
	deadline, err := servePayload(ctx, o, tel, stdout, logger, listening)
	// One shutdown deadline covers the drain and the flush; the flush keeps a
	// floor so a drain that used it all (or a start that failed) still gets a last try.
	fctx, cancel := context.WithDeadline(context.Background(), later(deadline, time.Now().Add(minFlush)))
	defer cancel()
	if ferr := tel.Shutdown(fctx); ferr != nil {
		logger.Warn("telemetry flush incomplete", "err", ferr)
	}
	return err
}

// minFlush is the least time the telemetry flush gets at shutdown.
const minFlush = time.Second

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// servePayload serves the payload and runs the checks until ctx is done or a
// listener fails, then drains; deadline is when the drain had to end (zero
// when serving never started).
func servePayload(ctx context.Context, o serveOptions, tel *telemetry.Providers, stdout io.Writer, logger *slog.Logger, listening func(addr string)) (deadline time.Time, err error) {
	ps, err := newPayload(o, tel, stdout)
	if err != nil {
		return time.Time{}, err
	}
	defer ps.Close()
	tlsConfig, err := loadTLS(o)
	if err != nil {
		return time.Time{}, err
	}
	// Bind before the checks start: a check of this sidecar's own port (a
	// mesh lists every pod, this one included) must find it listening.
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return time.Time{}, fmt.Errorf("listening on %s: %w", o.listen, err)
	}
	runner, stopChecks, err := startChecks(ctx, o, tel, logger)
	if err != nil {
		_ = ln.Close()
		return time.Time{}, err
	}
	defer stopChecks()
	status, err := runner.StatusPage(checks.PageOptions{TraceURL: o.traceURL})
	if err != nil {
		_ = ln.Close()
		return time.Time{}, fmt.Errorf("%w: --trace-url: %w", errUsage, err)
	}
	ps.Handle("/status", status)
	srv := payload.NewHTTPServer(ps, tlsConfig, logger)
	errc := make(chan error, 2)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	admin, err := startAdmin(o.adminListen, errc, logger)
	if err != nil {
		_ = srv.Close()
		return time.Time{}, err
	}

	ps.SetReady(true)
	logger.Info("heartbeat serving", "version", version, "addr", ln.Addr().String(), "tls", tlsConfig != nil)
	if listening != nil {
		listening(ln.Addr().String())
	}
	var serveErr error
	select {
	case err := <-errc:
		// One server failed: shut the other down as on a signal, then report it.
		serveErr = fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	ps.SetReady(false)
	// Checks stop before the drain: a probe of this pod's own closing port
	// would otherwise raise an ALERT on every shutdown.
	stopChecks()
	return drain(o, srv, admin, serveErr, logger)
}

// newPayload builds the payload handler from the serve flags.
func newPayload(o serveOptions, tel *telemetry.Providers, stdout io.Writer) (*payload.Server, error) {
	cfg := payload.Config{
		MinSize:      o.minSize,
		MaxSize:      o.maxSize,
		MaxUpload:    o.maxUpload,
		WriteTimeout: o.writeTimeout,
		Version:      version,
		Host:         hostName(),

		MeterProvider:  tel.MeterProvider,
		TracerProvider: tel.TracerProvider,
		Propagator:     tel.Propagator,
	}
	if o.accessLog {
		cfg.AccessLog = stdout
	}
	ps, err := payload.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return ps, nil
}

// loadTLS reads the certificate here, not in ServeTLS, so a bad file fails
// before the sidecar reports ready; nil means plain HTTP.
func loadTLS(o serveOptions) (*tls.Config, error) {
	if o.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("%w: --tls-cert/--tls-key: %w", errUsage, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// startAdmin serves pprof on addr, reporting a failure of Serve on errc; ""
// turns it off and returns a nil server.
func startAdmin(addr string, errc chan<- error, logger *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on admin address %s: %w", addr, err)
	}
	admin := &http.Server{Handler: payload.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { errc <- admin.Serve(ln) }()
	logger.Info("admin endpoints (pprof) listening", "addr", ln.Addr().String())
	return admin, nil
}

// drain waits the drain delay, then gives in-flight requests until the
// shutdown deadline, which it returns for the telemetry flush.
func drain(o serveOptions, srv, admin *http.Server, serveErr error, logger *slog.Logger) (time.Time, error) {
	logger.Info("shutting down", "drain_delay", o.drainDelay, "timeout", o.shutdownTimeout)
	if o.drainDelay > 0 && serveErr == nil {
		// Load balancers need time to see /readyz fail before the listener closes.
		t := time.NewTimer(o.drainDelay)
		<-t.C
	}
	deadline := time.Now().Add(o.shutdownTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if admin != nil {
		_ = admin.Close()
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return deadline, errors.Join(serveErr, fmt.Errorf("in-flight requests did not finish within %s: %w", o.shutdownTimeout, err))
	}
	if serveErr != nil {
		return deadline, serveErr
	}
	logger.Info("shut down cleanly")
	return deadline, nil
}

// peersResolverFlag is --peers-resolver, for the commands that run checks.
func peersResolverFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "peers-resolver", "", "DNS server (ip:port) that resolves the members of each_address and mesh checks; empty for the system resolver")
}

// meshIdentity is this sidecar's identity in mesh checks, from the downward
// API's POD_IP, POD_IPS and NODE_NAME or else its interface addresses. A
// malformed variable is an error; no address at all only matters to mesh
// checks, which then probe as a member outside the answer.
func meshIdentity(logger *slog.Logger) (mesh.Identity, error) {
	id, err := mesh.IdentityFrom(os.Getenv, net.InterfaceAddrs)
	if errors.Is(err, mesh.ErrNoIdentity) {
		logger.Warn("no address for mesh checks; they will probe without being counted", "err", err)
		return id, nil
	}
	return id, err
}

// startChecks loads the checks file, starts the scheduler and the reloader
// (file changes and SIGHUP), and returns a function that stops both and
// waits for them; it may be called more than once.
func startChecks(ctx context.Context, o serveOptions, tel *telemetry.Providers, logger *slog.Logger) (*checks.Runner, func(), error) {
	self, err := meshIdentity(logger)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	runner, err := checks.New(checks.Settings{
		MeterProvider:  tel.MeterProvider,
		TracerProvider: tel.TracerProvider,
		LoggerProvider: tel.LoggerProvider,
		Propagator:     tel.Propagator,
		Logger:         logger,
		MaxConcurrent:  o.maxConcurrent,
		StatusHistory:  o.statusHistory,
		Syslog:         syslog.Config{Addr: o.syslogAddr},
		MeshIdentity:   self,
		PeersResolver:  o.peersResolver,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	path := resolveConfig(o.config)
	var file *config.File
	if path != "" {
		if file, err = config.Load(path); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		if err := runner.Apply(file); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", errUsage, path, err)
		}
		logger.Info("checks loaded", "config", path, "checks", len(file.Checks))
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := runner.Run(cctx); err != nil {
			logger.Error("checks stopped", "err", err)
		}
	})
	if path == "" {
		// systemd's reload sends SIGHUP; without a checks file there is nothing to reload, and the default action would end the process.
		signal.Ignore(syscall.SIGHUP)
	} else {
		wg.Go(func() { watchChecks(cctx, path, file, runner, logger) })
	}
	return runner, func() { cancel(); wg.Wait() }, nil
}

// watchChecks reloads the checks file when it changes or on SIGHUP until ctx is done.
func watchChecks(ctx context.Context, path string, file *config.File, runner *checks.Runner, logger *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	trigger := make(chan struct{}, 1)
	var forward sync.WaitGroup
	forward.Go(func() {
		for range hup {
			select {
			case trigger <- struct{}{}:
			default: // a reload is already pending
			}
		}
	})
	defer func() {
		signal.Stop(hup)
		close(hup)
		forward.Wait()
	}()
	w := &config.Watcher{
		Path:    path,
		Current: file,
		Trigger: trigger,
		Apply: func(f *config.File) {
			if err := runner.Apply(f); err != nil {
				runner.ReportReloadError(err)
				return
			}
			logger.Info("checks reloaded", "config", path, "checks", len(f.Checks))
		},
		Observe: runner.ReportReloadError,
	}
	_ = w.Run(ctx)
}

// checkCmd runs every check once, as GoHeartbeat's users ran it by hand.
func checkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", "Run every check once and print one line per check.", stderr)
	var path, peersResolver string
	var maxConcurrent int
	configFlag(fs, &path)
	fs.IntVar(&maxConcurrent, "max-concurrent-checks", checks.DefaultMaxConcurrent, "probes allowed in flight at once")
	peersResolverFlag(fs, &peersResolver)
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	file, code := loadForCommand("check", path, stderr)
	if file == nil {
		return code
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	self, err := meshIdentity(logger)
	if err != nil {
		fmt.Fprintf(stderr, "heartbeat check: %v\n", err)
		return exitUsage
	}
	s := checks.Settings{Logger: logger, MaxConcurrent: maxConcurrent, MeshIdentity: self, PeersResolver: peersResolver}
	if checks.RunOnce(ctx, file, stdout, s) {
		return exitOK
	}
	return exitFailure
}

// validateCmd checks a checks file without running anything.
func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "Check a checks file and report every error with its file, line and field.", stderr)
	var path string
	configFlag(fs, &path)
	if code, ok := parse(fs, args, stderr); !ok {
		return code
	}
	file, code := loadForCommand("validate", path, stderr)
	if file == nil {
		return code
	}
	noun := "checks"
	if len(file.Checks) == 1 {
		noun = "check"
	}
	fmt.Fprintf(stdout, "%s: OK, %d %s\n", file.Path, len(file.Checks), noun)
	return exitOK
}

// loadForCommand loads the checks file for check and validate; a nil file comes with the exit code.
func loadForCommand(cmd, path string, stderr io.Writer) (*config.File, int) {
	path = resolveConfig(path)
	if path == "" {
		fmt.Fprintf(stderr, "heartbeat %s: no checks file: give --config (%s does not exist)\n", cmd, defaultConfigPath)
		return nil, exitUsage
	}
	file, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return nil, exitUsage
	}
	return file, exitOK
}

// hostName is what X-Heartbeat-Host reports: the pod name in Kubernetes.
func hostName() string {
	if n := os.Getenv("POD_NAME"); n != "" {
		return n
	}
	n, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return n
}
