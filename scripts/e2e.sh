#!/usr/bin/env bash
# make e2e: installs rsyslog and Prometheus (Debian), builds the collector and
# Jaeger (cached), validates otel-collector.yaml with the built collector,
# then runs the end-to-end test in e2e/ against bin/heartbeat (make build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

need_apt rsyslog prometheus
bash scripts/collector.sh
bash scripts/jaeger.sh
if [ ! -x bin/heartbeat ]; then
  echo "bin/heartbeat missing: run make build first" >&2
  exit 1
fi
bin/otelcol-heartbeat validate --config otel-collector.yaml
echo "otel-collector.yaml: valid"
go test -tags e2e -count=1 -timeout 12m -v ./e2e/ "$@"
