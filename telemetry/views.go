package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
)

// cardinalityLimit bounds the series of one instrument. The SDK's default
// (2,000) would fold the checks of a large file into one overflow series; the
// checks file already bounds the real count (checks × max_addresses).
const cardinalityLimit = 100_000

// noExemplars keeps no exemplars: the per-check instruments have one series
// per check, and even one exemplar slot each costs ~1.5 KB at 10,000 checks.
// Alerts and /status carry the trace ids of failing runs instead. One
// reservoir value serves every series: the SDK's zero-size reservoir would
// still be allocated per series (about 300 bytes each).
func noExemplars(sdkmetric.Aggregation) exemplar.ReservoirProvider {
	return func(attribute.Set) exemplar.Reservoir { return noReservoir{} }
}

// noReservoir drops every exemplar offered to it.
type noReservoir struct{}

func (noReservoir) Offer(context.Context, time.Time, exemplar.Value, []attribute.KeyValue) {}

// Collect hands back a slice without capacity: the SDK sizes each data
// point's exemplar slice by the capacity it gets back, and a pooled slice's
// would cost an allocation per series on every collection.
func (noReservoir) Collect(dest *[]exemplar.Exemplar) { *dest = nil }

// views fixes the histogram buckets of the HTTP metrics in the provider, so
// they are right even if an instrument is created without advisory
// boundaries. The payload server records these on its hot path with
// precomputed attribute sets; explicit-bucket histograms keep that a bucket
// search and an atomic add.
func views() []sdkmetric.Option {
	// The boundaries the HTTP semantic conventions recommend for
	// http.server.request.duration and http.client.request.duration, in
	// seconds, refined below 5 ms, where nearly every payload answer and
	// loopback probe falls.
	durationBoundaries := []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
	// Body sizes in bytes, in powers of 4 from 64 B to 1 GiB: heartbeat serves
	// 1 B to 1 MiB by default and accepts uploads up to 1 GiB, and the SDK
	// default boundaries (0 to 10000) would put every large body in the
	// overflow bucket.
	sizeBoundaries := []float64{0, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20, 256 << 20, 1 << 30}
	hist := func(name string, bounds []float64) sdkmetric.Option {
		return sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: name, Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: bounds}},
		))
	}
	return []sdkmetric.Option{
		sdkmetric.WithCardinalityLimit(cardinalityLimit),
		sdkmetric.WithView(sdkmetric.NewView(
			// Every kind, counters too: a run is always sampled, so probe.runs
			// would otherwise keep an exemplar per check and copy it into
			// every collection.
			sdkmetric.Instrument{Name: "probe.*"},
			sdkmetric.Stream{ExemplarReservoirProviderSelector: noExemplars},
		)),
		sdkmetric.WithView(sdkmetric.NewView(
			sdkmetric.Instrument{Name: "http.client.request.duration", Kind: sdkmetric.InstrumentKindHistogram},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: durationBoundaries}, ExemplarReservoirProviderSelector: noExemplars},
		)),
		hist("http.server.request.duration", durationBoundaries),
		hist("http.*.request.body.size", sizeBoundaries),
		hist("http.*.response.body.size", sizeBoundaries),
	}
}
