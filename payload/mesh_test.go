package payload

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func meshCounts(t *testing.T, ms map[string]metricdata.Metrics) map[string]int64 {
	t.Helper()
	m, ok := ms["heartbeat.mesh.probes.received"]
	if !ok {
		t.Fatalf("no heartbeat.mesh.probes.received among %v", keys(ms))
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok || !sum.IsMonotonic || m.Unit != "{probe}" {
		t.Fatalf("heartbeat.mesh.probes.received is %T (unit %q), want a monotonic int64 sum in {probe}", m.Data, m.Unit)
	}
	out := map[string]int64{}
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Len() != 1 {
			t.Errorf("attributes %v, want heartbeat.mesh.check only", dp.Attributes.ToSlice())
		}
		v, _ := dp.Attributes.Value("heartbeat.mesh.check")
		out[v.AsString()] = dp.Value
	}
	return out
}

func TestMeshProbesCounted(t *testing.T) {
	ts, reader, _, _ := instrumented(t, sdktrace.NeverSample())
	send := func(check string, path string) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		if check != "" {
			req.Header.Set(MeshCheckHeader, check)
		}
		do(t, req)
	}
	for range 3 {
		send("peers", "/heartbeat/16")
	}
	send("peers", "/heartbeat/0") // a 400 is still a probe that arrived
	send("edge", "/healthz")
	send("", "/heartbeat/16")        // not a mesh probe
	send("b\u00e4d", "/heartbeat/1") // outside the names counted one by one
	got := meshCounts(t, collect(t, reader))
	want := map[string]int64{"peers": 4, "edge": 1, "_other": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counts %v, want %v", got, want)
	}
}

func TestMeshCheckNamesBounded(t *testing.T) {
	ts, reader, _, _ := instrumented(t, sdktrace.NeverSample())
	for i := range maxMeshChecks + 10 {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/heartbeat/1", nil)
		req.Header.Set(MeshCheckHeader, fmt.Sprintf("c%02d", i))
		do(t, req)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/heartbeat/1", nil)
	req.Header.Set(MeshCheckHeader, strings.Repeat("x", maxMeshNameLen+1))
	do(t, req)
	got := meshCounts(t, collect(t, reader))
	if len(got) != maxMeshChecks+1 {
		t.Fatalf("%d attribute values, want %d names plus _other", len(got), maxMeshChecks)
	}
	if got[meshCheckOther] != 11 || got["c00"] != 1 {
		t.Fatalf("_other %d c00 %d, want 11 and 1", got[meshCheckOther], got["c00"])
	}
}
