#!/usr/bin/env bash
# The soak test: bin/heartbeat as a real process
# with 1,000 checks and telemetry exporting to a live collector, under a mixed
# keep-alive load on 127.0.0.1 (1 KiB, 64 KiB, 1 MiB GETs and 1 MiB POSTs).
# Pass: zero non-2xx and socket errors, retained RSS at the end within 10 % of
# retained RSS after warm-up, goroutines and fds back to their post-warm-up
# figures. Retained RSS is read at rest, after the same rest both times: a
# snapshot a second, each after a forced GC (pprof ?gc=1), of VmRSS less the
# free heap the runtime still holds resident (HeapIdle - HeapReleased); the
# figure is the floor two snapshots agree on within 1 %, over at least one
# metric export interval. The figures table is printed and written to
# $SOAK_REPORT, the two heap profiles next to it (soak-heap-{warm,end}.pb.gz:
# `go tool pprof -top -diff_base=bin/soak-heap-warm.pb.gz bin/soak-heap-end.pb.gz`).
# The test lives in soak/ (build tag soak); this script builds what it needs
# and runs it.
#
#   scripts/soak.sh            1,000,000 requests (`make soak`, `make soak-ci`)
#   DURATION=30m scripts/soak.sh   the long form: load for 30 minutes
#
# Knobs (environment):
#   REQUESTS=1000000     request count (ignored with DURATION)
#   SOAK_CONNS=16        keep-alive connections of the load generator
#   SOAK_CHECKS=1000     checks the server runs meanwhile (0: none)
#   SOAK_MIX=1k-get:90,64k-get:8,1m-get:1,1m-post:1
#   SOAK_COLLECTOR=auto  otelcol | otlpsink | otlptest | none; auto uses
#                        bin/otelcol-heartbeat when built, else otlpsink.
#                        otelcol builds the collector when it is missing.
#   SOAK_WARMUP=100000   warm-up requests before the baseline
#   SOAK_REQUIRE=1       0: pass on a binary without checks or telemetry wiring
#   SOAK_REPORT=bin/soak-report.md
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

REQUESTS="${REQUESTS:-1000000}"
DURATION="${DURATION:-}"
CONNS="${SOAK_CONNS:-16}"
CHECKS="${SOAK_CHECKS:-1000}"
MIX="${SOAK_MIX:-1k-get:90,64k-get:8,1m-get:1,1m-post:1}"
COLLECTOR="${SOAK_COLLECTOR:-auto}"
WARMUP="${SOAK_WARMUP:-100000}"
REQUIRE="${SOAK_REQUIRE:-1}"
REPORT="${SOAK_REPORT:-bin/soak-report.md}"

log() { printf 'soak: %s\n' "$*" >&2; }

# to_secs 1h30m -> 5400; whole h, m and s units only.
to_secs() {
  local d="$1" total=0
  while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
    case "${BASH_REMATCH[2]}" in
      h) total=$((total + BASH_REMATCH[1] * 3600)) ;;
      m) total=$((total + BASH_REMATCH[1] * 60)) ;;
      s) total=$((total + BASH_REMATCH[1])) ;;
    esac
    d="${BASH_REMATCH[3]}"
  done
  [ -z "$d" ] && [ "$total" -gt 0 ] && echo "$total"
}

# `make soak` already ran `make build`.
if [ -z "${MAKELEVEL:-}" ]; then
  make --no-print-directory build >&2
fi
[ -x bin/heartbeat ] || { log "bin/heartbeat missing: run make build"; exit 1; }

if [ "$COLLECTOR" = otelcol ] && [ ! -x bin/otelcol-heartbeat ]; then
  bash scripts/collector.sh
fi

T="$(mktemp -d "${TMPDIR:-/tmp}/heartbeat-soak.XXXXXX")"
trap 'rm -rf "$T"' EXIT
go build -o "$T/otlpsink" ./bench/otlpsink

# go test's own timeout is the backstop; the soak stops by itself long before.
if [ -n "$DURATION" ]; then
  bound=(-soak.duration="$DURATION")
  secs="$(to_secs "$DURATION")" || { log "DURATION=$DURATION: want e.g. 30m, 2h or 1h30m"; exit 2; }
  timeout="$((secs + 1200))s"
  log "long form: load for $DURATION"
else
  bound=(-soak.requests="$REQUESTS")
  timeout=90m
  log "bounded form: $REQUESTS requests"
fi
require=true
[ "$REQUIRE" = 1 ] || require=false
case "$REPORT" in /*) ;; *) REPORT="$PWD/$REPORT" ;; esac
mkdir -p "$(dirname "$REPORT")"

go test -tags soak -count=1 -timeout "$timeout" -run '^TestSoak$' -v ./soak -args \
  "${bound[@]}" \
  -soak.bin="$PWD/bin/heartbeat" \
  -soak.otelcol="$PWD/bin/otelcol-heartbeat" \
  -soak.otlpsink="$T/otlpsink" \
  -soak.conns="$CONNS" \
  -soak.checks="$CHECKS" \
  -soak.mix="$MIX" \
  -soak.collector="$COLLECTOR" \
  -soak.warmup="$WARMUP" \
  -soak.require-telemetry="$require" \
  -soak.require-checks="$require" \
  -soak.report="$REPORT" \
  -soak.heap-profiles="$(dirname "$REPORT")"
