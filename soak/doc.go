// Package soak is the bounded soak test of the heartbeat binary: it starts
// bin/heartbeat as a real process with 1,000 checks and telemetry exporting to
// a live collector, drives a mixed load at it over keep-alive connections on
// 127.0.0.1, and measures the server from
// /proc/PID and its pprof admin endpoint: errors, retained memory after
// warm-up and at the end (VmRSS less the free heap still resident, after
// forced GCs, so that the GC's schedule does not decide the figure),
// goroutines and file descriptors.
//
// The test itself is behind the build tag soak, so `go test ./...` only runs
// the helpers' unit tests; scripts/soak.sh (`make soak`, `make soak-ci`)
// builds the binaries and runs it:
//
//	go test -tags soak -run TestSoak -v ./soak -args -soak.requests=1000000
package soak
