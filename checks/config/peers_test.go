package config

import (
	"errors"
	"testing"
	"time"

	"github.com/heartbeat-sidecar/heartbeat/checks/mesh"
)

func TestPeersErrors(t *testing.T) {
	t.Parallel()
	const head = "checks:\n  - name: a\n    type: http\n    target: http://peers.svc:8080/heartbeat/1\n"
	tests := []struct {
		name, yaml, want string
		kind             error
	}{
		{"no mode", head + "    peers: {k: 3}\n", "t.yaml:5: checks[0].peers.mode: required (all, ring or sweep)", ErrMissingField},
		{"unknown mode", head + "    peers: {mode: star}\n", `t.yaml:5: checks[0].peers.mode: unknown mode "star" (want all, ring or sweep)`, ErrInvalidValue},
		{"not a mapping", head + "    peers: ring\n", "t.yaml:5: checks[0].peers: must be a mapping", ErrWrongType},
		{"unknown key", head + "    peers: {mode: ring, kk: 3}\n", `t.yaml:5: checks[0].peers.kk: unknown field (did you mean "k"?)`, ErrUnknownField},
		{"k range", head + "    peers: {mode: ring, k: 0}\n", "t.yaml:5: checks[0].peers.k: must be between 1 and 100", ErrInvalidValue},
		{"sweep range", head + "    peers: {mode: sweep, sweep: 5000}\n", "t.yaml:5: checks[0].peers.sweep: must be between 1 and 1000", ErrInvalidValue},
		{"ring with sweep", head + "    peers: {mode: ring, sweep: 4}\n", "t.yaml:5: checks[0].peers.mode: sweep and epoch are only used with mode sweep", ErrInvalidValue},
		{"all with k", head + "    peers: {mode: all, k: 4}\n", "t.yaml:5: checks[0].peers.mode: mode all probes every member: k, sweep and epoch are for ring and sweep", ErrInvalidValue},
		{"epoch below interval", head + "    interval: 30s\n    jitter: 0.1\n    peers: {mode: sweep, epoch: 30s}\n", "t.yaml:7: checks[0].peers.epoch: must be at least the interval plus twice its jitter (36s), so every epoch gets a run", ErrInvalidValue},
		{"dns type", "checks:\n  - name: a\n    type: dns\n    target: peers.svc\n    peers: {mode: ring}\n", "t.yaml:5: checks[0].peers.mode: mode ring is for http, tcp and throughput checks, not dns", ErrInvalidValue},
		{"ip target", "checks:\n  - name: a\n    type: tcp\n    target: 10.0.0.1:80\n    peers: {mode: ring}\n", "t.yaml:5: checks[0].peers.mode: target host is an IP address; a mesh needs a name that resolves to its members (a headless Service)", ErrInvalidValue},
		{"with a proxy", head + "    http: {proxy_url: \"http://proxy:3128\"}\n    peers: {mode: ring}\n", "t.yaml:6: checks[0].peers.mode: cannot be used with http.proxy_url: the proxy resolves the target", ErrInvalidValue},
		{"with each_address", head + "    each_address: true\n    peers: {mode: ring}\n", "t.yaml:5: checks[0].each_address: probes every member; remove it to use peers mode ring", ErrInvalidValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parse("t.yaml", []byte(tt.yaml), lookupTestEnv)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n got: %v\nwant: %s", err, tt.want)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, %v) = false", tt.kind)
			}
		})
	}
}

func TestPeersDefaults(t *testing.T) {
	t.Parallel()
	const head = "checks:\n  - name: a\n    type: tcp\n    target: peers.svc:8080\n    interval: 20s\n"
	cases := []struct {
		peers string
		want  mesh.Plan
		each  bool
	}{
		{"{mode: ring}", mesh.Plan{Mode: mesh.ModeRing, K: 3}, false},
		{"{mode: sweep}", mesh.Plan{Mode: mesh.ModeSweep, K: 3, Sweep: 8, Epoch: 40 * time.Second}, false},
		{"{mode: sweep, k: 5, sweep: 2, epoch: 10m}", mesh.Plan{Mode: mesh.ModeSweep, K: 5, Sweep: 2, Epoch: 10 * time.Minute}, false},
		{"{mode: all}", mesh.Plan{Mode: mesh.ModeAll}, true},
	}
	for _, c := range cases {
		f, err := parse("t.yaml", []byte(head+"    peers: "+c.peers+"\n"), lookupTestEnv)
		if err != nil {
			t.Fatalf("%s: %v", c.peers, err)
		}
		got := f.Checks[0]
		if got.Peers != c.want || got.EachAddress != c.each {
			t.Errorf("%s: peers %+v each_address %v, want %+v %v", c.peers, got.Peers, got.EachAddress, c.want, c.each)
		}
		if c.each && got.MaxAddresses != DefaultMaxAddresses {
			t.Errorf("%s: max_addresses %d, want the each_address default %d", c.peers, got.MaxAddresses, DefaultMaxAddresses)
		}
	}
	// A Check built in code gets the same defaults.
	c := Check{Name: "a", Type: TypeTCP, Target: "peers.svc:1", Interval: 10 * time.Second, Peers: mesh.Plan{Mode: mesh.ModeSweep}}
	c.ApplyDefaults()
	if want := (mesh.Plan{Mode: mesh.ModeSweep, K: 3, Sweep: 8, Epoch: 20 * time.Second}); c.Peers != want {
		t.Errorf("ApplyDefaults: %+v, want %+v", c.Peers, want)
	}
	if err := (&File{Checks: []Check{c}}).Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestPeersOnThroughput(t *testing.T) {
	t.Parallel()
	src := "checks:\n  - name: bw\n    type: throughput\n    target: http://peers.svc:8080\n    interval: 10m\n    timeout: 30s\n    peers: {mode: sweep, k: 2, sweep: 1}\n"
	f, err := parse("t.yaml", []byte(src), lookupTestEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := (mesh.Plan{Mode: mesh.ModeSweep, K: 2, Sweep: 1, Epoch: 20 * time.Minute}); f.Checks[0].Peers != want || f.Checks[0].EachAddress {
		t.Fatalf("peers %+v each_address %v, want %+v and false", f.Checks[0].Peers, f.Checks[0].EachAddress, want)
	}
}
