package payload

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// meshReceived is the expected heartbeat.mesh.probes.received for counts by check name.
func meshReceived(counts map[string]int64) metricdata.Metrics {
	var dps []metricdata.DataPoint[int64]
	for name, n := range counts {
		dps = append(dps, metricdata.DataPoint[int64]{
			Attributes: attribute.NewSet(attribute.String("heartbeat.mesh.check", name)), Value: n})
	}
	return metricdata.Metrics{
		Name:        "heartbeat.mesh.probes.received",
		Description: "Probes received from mesh peers, by the mesh check that sent them.",
		Unit:        "{probe}",
		Data:        metricdata.Sum[int64]{Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: dps},
	}
}

func meshSend(t *testing.T, url, check string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if check != "" {
		req.Header.Set(MeshCheckHeader, check)
	}
	do(t, req)
}

func TestMeshProbesCounted(t *testing.T) {
	ts, reader, _, _ := instrumented(t, sdktrace.NeverSample())
	for range 3 {
		meshSend(t, ts.URL+"/heartbeat/16", "peers")
	}
	meshSend(t, ts.URL+"/heartbeat/0", "peers") // a 400 is still a probe that arrived
	meshSend(t, ts.URL+"/healthz", "edge")
	meshSend(t, ts.URL+"/heartbeat/16", "")        // not a mesh probe
	meshSend(t, ts.URL+"/heartbeat/1", "b\u00e4d") // not counted under its own name
	got, ok := collect(t, reader)["heartbeat.mesh.probes.received"]
	if !ok {
		t.Fatal("no heartbeat.mesh.probes.received")
	}
	metricdatatest.AssertEqual(t, meshReceived(map[string]int64{"peers": 4, "edge": 1, meshCheckOther: 1}), got, metricdatatest.IgnoreTimestamp())
}

func TestMeshCheckNamesBounded(t *testing.T) {
	ts, reader, _, _ := instrumented(t, sdktrace.NeverSample())
	want := map[string]int64{}
	for i := range maxMeshChecks + 10 {
		name := fmt.Sprintf("c%02d", i)
		meshSend(t, ts.URL+"/heartbeat/1", name)
		if i < maxMeshChecks {
			want[name] = 1
		}
	}
	meshSend(t, ts.URL+"/heartbeat/1", strings.Repeat("x", maxMeshNameLen+1))
	want[meshCheckOther] = 11
	got, ok := collect(t, reader)["heartbeat.mesh.probes.received"]
	if !ok {
		t.Fatal("no heartbeat.mesh.probes.received")
	}
	metricdatatest.AssertEqual(t, meshReceived(want), got, metricdatatest.IgnoreTimestamp())
}
