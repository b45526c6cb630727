#!/usr/bin/env bash
# make stack: starts the e2e pipeline (rsyslog, Prometheus, Jaeger with its
# UI, the collector, Fluent Bit and the log store behind it, sidecars A and B)
# on free 127.0.0.1 ports, prints the URLs and leaves it running.
# `scripts/stack.sh down` stops it. Without ../shared there is no Jaeger UI
# (the query API alone) and, unless $FLUENT_BIT or PATH has one, no Fluent
# Bit: the stack says so and runs without them.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

case "${1:-up}" in
  up)
    need_apt rsyslog prometheus
    bash scripts/collector.sh
    bash scripts/jaeger.sh
    bash scripts/jaeger-ui.sh
    bash scripts/fluent-bit.sh
    if [ ! -x bin/heartbeat ] && [[ " ${*:2} " != *" -no-sidecars "* ]]; then
      echo "bin/heartbeat missing: run make build first" >&2
      exit 1
    fi
    go build -tags e2e -o bin/heartbeat-stack ./e2e/cmd/stack
    exec bin/heartbeat-stack -root . -work e2e/work/stack "${@:2}" up
    ;;
  down)
    if [ -x bin/heartbeat-stack ]; then
      bin/heartbeat-stack -work e2e/work/stack down
    fi
    ;;
  *)
    echo "usage: $0 [up|down]" >&2
    exit 2
    ;;
esac
