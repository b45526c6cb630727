package checks

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/heartbeat-sidecar/heartbeat/checks/config"
	"github.com/heartbeat-sidecar/heartbeat/checks/probe"
)

const benchChecks = 10_000

// fullRunner is a Runner with n checks whose history is full: 60 runs
// each, one in ten failed with a sampled trace (the worst case: failures
// with traces do not share details), and five phases on the last run.
func fullRunner(b *testing.B, n int) *Runner {
	b.Helper()
	r := benchRunner(b, n)
	fill(r)
	return r
}

// benchRunner is a Runner with n HTTP checks that have not run.
func benchRunner(b *testing.B, n int) *Runner {
	b.Helper()
	r, err := New(Settings{Syslog: SyslogConfig{Addr: "none"}})
	if err != nil {
		b.Fatal(err)
	}
	// The path is not /heartbeat/: the page would take these for mesh
	// members and fetch their /status, and no test sends traffic beyond loopback.
	cfgs := make([]config.Check, n)
	for i := range cfgs {
		c := config.Check{Name: fmt.Sprintf("check-%05d", i), Type: config.TypeHTTP,
			Target:   fmt.Sprintf("http://10.%d.%d.%d:8080/ready", i>>16&255, i>>8&255, i&255),
			Interval: 30 * time.Second, Timeout: 5 * time.Second, FailureThreshold: 3, SuccessThreshold: 1}
		c.ApplyDefaults()
		cfgs[i] = c
	}
	if err := r.Apply(&config.File{Checks: cfgs}); err != nil {
		b.Fatal(err)
	}
	return r
}

// fill records DefaultStatusHistory runs on every check's series, as record does.
func fill(r *Runner) {
	t0 := time.Now().Add(-time.Hour)
	for ci, c := range r.snapshot() {
		s := c.main
		for k := range r.keep {
			start := t0.Add(time.Duration(k) * 30 * time.Second)
			res := probe.Result{Success: true, Start: start, Duration: time.Duration(1+k%7) * time.Millisecond, StatusCode: 200,
				Phases: []probe.PhaseTiming{{Name: probe.PhaseConnect, Start: start, End: start.Add(time.Millisecond)},
					{Name: probe.PhaseRequest, Start: start, End: start}, {Name: probe.PhaseProcessing, Start: start, End: start},
					{Name: probe.PhaseTransfer, Start: start, End: start}, {Name: probe.PhaseDNS, Start: start, End: start}}}
			ctx := context.Background()
			reason := ""
			if (ci+k)%10 == 0 {
				res.Success, res.ErrorType, res.StatusCode = false, probe.ErrStatusCode, 503
				reason = fmt.Sprintf("status code %d, want 2xx", res.StatusCode)
				var tid trace.TraceID
				tid[0], tid[1], tid[2] = byte(ci), byte(k), 1
				ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid,
					SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled}))
			}
			s.mu.Lock()
			s.st.apply(res.Success, 3, 1, start)
			s.st.LastRun = start
			s.remember(ctx, res, reason, r.keep)
			s.mu.Unlock()
		}
	}
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkStatusHistoryMemory reports what a full history of
// DefaultStatusHistory runs costs at 10,000 checks: the heap held after
// filling it minus the heap of the same Runner with no runs.
func BenchmarkStatusHistoryMemory(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		r := benchRunner(b, benchChecks)
		before := heapInUse()
		b.StartTimer()
		fill(r)
		b.StopTimer()
		after := heapInUse()
		b.ReportMetric(float64(after-before)/(1<<20), "MiB/10k-checks")
		b.ReportMetric(float64(after-before)/benchChecks/float64(r.keep), "B/run")
		runtime.KeepAlive(r)
		b.StartTimer()
	}
}

// BenchmarkStatusPage renders the page of 10,000 checks with full
// histories: the default page (failing first, the first 500 drawn), every
// check drawn, and the JSON document.
func BenchmarkStatusPage(b *testing.B) {
	r := fullRunner(b, benchChecks)
	h, err := r.StatusPage(PageOptions{TraceURL: "http://jaeger:16686/trace/{trace_id}"})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct{ name, query, accept string }{
		{"html-default", "", "text/html"},
		{"html-all", "?limit=10000", "text/html"},
		{"json", "", ""},
		{"json-no-history", "?history=0", ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, "/status"+bc.query, nil)
				if bc.accept != "" {
					req.Header.Set("Accept", bc.accept)
				}
				w := &countingWriter{h: http.Header{}}
				h.ServeHTTP(w, req)
				size = w.n
			}
			b.ReportMetric(float64(size)/(1<<20), "MiB/page")
		})
	}
}

// countingWriter is a ResponseWriter that only counts bytes.
type countingWriter struct {
	h http.Header
	n int
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) WriteHeader(int)     {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return io.Discard.Write(p)
}
