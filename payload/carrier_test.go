package payload

import (
	"net/http"
	"slices"
	"testing"

	"go.opentelemetry.io/otel/propagation"
)

// TestHeaderCarrierMatchesHeaderCarrier: the carrier must read what
// propagation.HeaderCarrier reads, for the propagators' keys and any other.
func TestHeaderCarrierMatchesHeaderCarrier(t *testing.T) {
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("tracestate", "a=1")
	h.Add("baggage", "k=v")
	h.Add("baggage", "k2=v2")
	h.Set("x-custom", "c")
	ours, theirs := headerCarrier(h), propagation.HeaderCarrier(h)
	for _, k := range []string{"traceparent", "tracestate", "baggage", "x-custom", "X-Custom", "missing"} {
		if got, want := ours.Get(k), theirs.Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
		if got, want := ours.Values(k), theirs.Values(k); !slices.Equal(got, want) {
			t.Errorf("Values(%q) = %q, want %q", k, got, want)
		}
	}
	ours.Set("tracestate", "b=2")
	if got := h.Get("Tracestate"); got != "b=2" {
		t.Errorf("after Set, Tracestate = %q, want b=2", got)
	}
	keys := ours.Keys()
	slices.Sort(keys)
	if want := []string{"Baggage", "Traceparent", "Tracestate", "X-Custom"}; !slices.Equal(keys, want) {
		t.Errorf("Keys() = %q, want %q", keys, want)
	}
}

// TestHeaderCarrierGetAllocatesNothing: the reason the carrier exists.
func TestHeaderCarrierGetAllocatesNothing(t *testing.T) {
	h := http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	c := headerCarrier(h)
	if n := testing.AllocsPerRun(100, func() {
		_ = c.Get("traceparent")
		_ = c.Get("tracestate")
		_ = c.Values("baggage")
	}); n != 0 {
		t.Errorf("Get/Values allocated %.0f times per call, want 0", n)
	}
}
