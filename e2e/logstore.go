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
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// LogRecord is one log record the log store received from Fluent Bit's
// opentelemetry output, as one JSON line: every OTLP field the output can
// carry, the ids in hex, and the type of each body field.
type LogRecord struct {
	Resource       map[string]any `json:"resource"`
	Scope          string         `json:"scope"`
	Attributes     map[string]any `json:"attributes"`
	SeverityText   string         `json:"severity_text"`
	SeverityNumber int32          `json:"severity_number"`
	// Body is the body's value; a map for a record Fluent Bit built itself
	// (the tail path), with BodyTypes naming each field's OTLP value type.
	Body      any               `json:"body"`
	BodyTypes map[string]string `json:"body_types,omitempty"`
	// BodyKeys lists a map body's keys in order, repeats included: OTLP
	// allows a key twice, which Body and BodyTypes would hide.
	BodyKeys []string `json:"body_keys,omitempty"`
	TraceID  string   `json:"trace_id"`
	SpanID   string   `json:"span_id"`
	// TimeUnixNano is the record's timestamp, as Fluent Bit sent it.
	TimeUnixNano int64 `json:"time_unix_nano"`
}

// BodyString is the body as a string, or "" when it is not one.
func (r LogRecord) BodyString() string {
	s, _ := r.Body.(string)
	return s
}

// BodyMap is the body as a map, or nil when it is not one.
func (r LogRecord) BodyMap() map[string]any {
	m, _ := r.Body.(map[string]any)
	return m
}

// LogRecords reads the log store's file; a missing file is no records yet.
func LogRecords(path string) ([]LogRecord, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []LogRecord
	dec := json.NewDecoder(f)
	for {
		var r LogRecord
		if err := dec.Decode(&r); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return out, fmt.Errorf("%s: record %d: %w", path, len(out)+1, err)
		}
		out = append(out, r)
	}
}

// serveLogStore stands where a user's log store stands: behind the shipped
// Fluent Bit config's opentelemetry output. It accepts OTLP/HTTP logs
// (protobuf or JSON) on /v1/logs and appends each record to file.
func serveLogStore(listen, file string) error {
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
		isJSON := r.Header.Get("Content-Type") == "application/json"
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
				rec := LogRecord{
					Resource:       res,
					Scope:          sl.Scope().Name(),
					Attributes:     lr.Attributes().AsRaw(),
					SeverityText:   lr.SeverityText(),
					SeverityNumber: int32(lr.SeverityNumber()),
					Body:           lr.Body().AsRaw(),
					TimeUnixNano:   int64(lr.Timestamp()),
				}
				if lr.Body().Type() == pcommon.ValueTypeMap {
					rec.BodyTypes = map[string]string{}
					for k, v := range lr.Body().Map().All() {
						rec.BodyTypes[k] = v.Type().String()
						rec.BodyKeys = append(rec.BodyKeys, k)
					}
				}
				if !lr.TraceID().IsEmpty() {
					rec.TraceID = lr.TraceID().String()
				}
				if !lr.SpanID().IsEmpty() {
					rec.SpanID = lr.SpanID().String()
				}
				if err := enc.Encode(rec); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
