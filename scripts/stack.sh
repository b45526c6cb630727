#!/usr/bin/env bash
# make stack: starts the e2e pipeline (rsyslog, Prometheus, Jaeger, the
# collector, a Fluent Bit stand-in, sidecars A and B) on free 127.0.0.1 ports,
# prints the URLs and leaves it running. `scripts/stack.sh down` stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

case "${1:-up}" in
  up)
    need_apt rsyslog prometheus
    bash scripts/collector.sh
    bash scripts/jaeger.sh
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
