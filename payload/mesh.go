package payload

import (
	"context"
	"fmt"
	"net/http"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// MeshCheckHeader is the request header by which a mesh peer's probe names
// its check. The probing side sets the same name; the two packages do not
// import each other, so the name is written in both.
const MeshCheckHeader = "Heartbeat-Mesh-Check"

// Attribute values of heartbeat.mesh.check beyond the real check names:
// the header comes from the network, so its values are bounded.
const (
	maxMeshChecks  = 32       // distinct check names counted by name
	meshCheckOther = "_other" // any name past the first maxMeshChecks, or not a valid name
	maxMeshNameLen = 128
)

// meshCounter counts incoming mesh probes per check name, so "this member
// is watched by k peers" is a metric at the watched end too.
type meshCounter struct {
	received metric.Int64Counter
	on       bool

	mu   sync.Mutex
	opts map[string]metric.AddOption // attribute set per counted name
}

func newMeshCounter(meter metric.Meter, on bool) (*meshCounter, error) {
	c, err := meter.Int64Counter("heartbeat.mesh.probes.received",
		metric.WithUnit("{probe}"),
		metric.WithDescription("Probes received from mesh peers, by the mesh check that sent them."))
	if err != nil {
		return nil, fmt.Errorf("payload: creating heartbeat.mesh.probes.received: %w", err)
	}
	return &meshCounter{received: c, on: on, opts: map[string]metric.AddOption{}}, nil
}

// count adds one for a request that carries MeshCheckHeader.
func (m *meshCounter) count(ctx context.Context, r *http.Request) {
	if !m.on {
		return
	}
	v := r.Header[MeshCheckHeader]
	if len(v) == 0 {
		return
	}
	m.received.Add(ctx, 1, m.option(v[0]))
}

// option is the cached attribute set for name, or the overflow one.
func (m *meshCounter) option(name string) metric.AddOption {
	if !validMeshName(name) {
		name = meshCheckOther
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.opts[name]; ok {
		return o
	}
	if len(m.opts) >= maxMeshChecks {
		name = meshCheckOther
		if o, ok := m.opts[name]; ok {
			return o
		}
	}
	o := metric.WithAttributeSet(attribute.NewSet(attribute.String("heartbeat.mesh.check", name)))
	m.opts[name] = o
	return o
}

// validMeshName accepts printable ASCII: what check names look like, and
// nothing a dashboard or a log line would trip over.
func validMeshName(s string) bool {
	if s == "" || len(s) > maxMeshNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
