//go:build e2e

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// SinkEnv, when set to "addr,file" in a process built from this package
// (the test binary or the stack launcher), makes RunSinkIfRequested serve the
// Fluent Bit stand-in instead of running the program.
const SinkEnv = "HEARTBEAT_E2E_SINK"

// SinkRecord is one log record the stand-in received, as one JSON line.
type SinkRecord struct {
	Resource     map[string]any `json:"resource"`
	Attributes   map[string]any `json:"attributes"`
	SeverityText string         `json:"severity_text"`
	Severity     int32          `json:"severity_number"`
	Body         string         `json:"body"`
	TraceID      string         `json:"trace_id"`
}

// RunSinkIfRequested serves the stand-in and exits when SinkEnv is set, and
// returns at once otherwise. Call it first thing in main or TestMain.
//
// The stand-in takes the place of Fluent Bit's opentelemetry input, which has
// no Debian package: it accepts OTLP/HTTP logs (protobuf or JSON) on
// /v1/logs exactly as that input does and appends each record to a file.
func RunSinkIfRequested() {
	spec := os.Getenv(SinkEnv)
	if spec == "" {
		return
	}
	listen, file, ok := strings.Cut(spec, ",")
	if !ok {
		fmt.Fprintf(os.Stderr, "%s=%q: want addr,file\n", SinkEnv, spec)
		os.Exit(2)
	}
	if err := serveSink(listen, file); err != nil {
		fmt.Fprintln(os.Stderr, "fluentbit sink:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveSink(listen, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	var mu sync.Mutex
	enc := json.NewEncoder(out)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /v1/logs", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := plogotlp.NewExportRequest()
		isJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
		if isJSON {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		if err != nil {
			http.Error(w, "bad OTLP logs request: "+err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		err = writeRecords(enc, req.Logs())
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		resp := plogotlp.NewExportResponse()
		var b []byte
		if isJSON {
			w.Header().Set("Content-Type", "application/json")
			b, err = resp.MarshalJSON()
		} else {
			w.Header().Set("Content-Type", "application/x-protobuf")
			b, err = resp.MarshalProto()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write(b)
	})
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	err = http.Serve(l, mux)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func writeRecords(enc *json.Encoder, logs plog.Logs) error {
	for _, rl := range logs.ResourceLogs().All() {
		res := rl.Resource().Attributes().AsRaw()
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				rec := SinkRecord{
					Resource:     res,
					Attributes:   lr.Attributes().AsRaw(),
					SeverityText: lr.SeverityText(),
					Severity:     int32(lr.SeverityNumber()),
					Body:         lr.Body().AsString(),
				}
				if !lr.TraceID().IsEmpty() {
					rec.TraceID = lr.TraceID().String()
				}
				if err := enc.Encode(rec); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
