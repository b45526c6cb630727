#!/usr/bin/env bash
# make e2e: installs rsyslog, Prometheus and Chromium (Debian), builds the
# collector and Jaeger (cached), finds or builds Fluent Bit (cached), unpacks
# the Jaeger UI (cached), validates otel-collector.yaml with the built
# collector, then runs the end-to-end test in e2e/ against bin/heartbeat
# (make build). Each step prints its time when it takes more than a second.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

timed() {
  local t0=$SECONDS
  "$@"
  if (( SECONDS - t0 > 1 )); then echo "e2e: $* took $(( SECONDS - t0 ))s" >&2; fi
}
# Chromium drives the Jaeger UI browser test.
timed need_apt rsyslog prometheus chromium fonts-liberation
timed bash scripts/collector.sh
timed bash scripts/jaeger.sh
timed bash scripts/jaeger-ui.sh
timed bash scripts/fluent-bit.sh
if [ ! -x bin/heartbeat ]; then
  echo "bin/heartbeat missing: run make build first" >&2
  exit 1
fi
bin/otelcol-heartbeat validate --config otel-collector.yaml
echo "otel-collector.yaml: valid"
go test -tags e2e -count=1 -timeout 12m -v ./e2e/ "$@"
