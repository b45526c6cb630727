#!/usr/bin/env bash
# Builds the real helm CLI from its Go module (helm.sh/helm/v3, the version
# below) and links it to bin/helm. The build is cached in $HOME/.cache/heartbeat
# under a hash of the version, the link flags and the Go version, as
# scripts/collector.sh caches the collector. Quiet unless it builds or fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

HELM_VERSION=v3.22.0
# What helm's own Makefile stamps into a release build: the version, and the
# Kubernetes version that `helm template` and `helm lint` assume by default
# (client-go v0.37 means Kubernetes 1.37).
LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  LDFLAGS="$LDFLAGS -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=37"
done

hash="$( { echo "$HELM_VERSION"; echo "$LDFLAGS"; go env GOVERSION; } | sha256sum | cut -c1-16)"
out="$CACHE_DIR/helm-$hash"
bin="$out/helm"

if [ ! -x "$bin" ]; then
  if [ -d "$out.tmp" ] && [ -n "$(find "$out.tmp" -maxdepth 0 -mmin -30)" ]; then
    echo "waiting for another build of helm in $out.tmp" >&2
    for _ in $(seq 1 180); do [ -x "$bin" ] && break; sleep 5; done
  fi
fi
if [ ! -x "$bin" ]; then
  echo "building helm $HELM_VERSION ($out); a cold build takes a few minutes" >&2
  start=$(date +%s)
  rm -rf "$out.tmp" && mkdir -p "$out.tmp"
  if ! GOFLAGS= CGO_ENABLED=0 GOBIN="$out.tmp" go install -trimpath -ldflags "$LDFLAGS" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$out.tmp/build.log" 2>&1; then
    tail -n 40 "$out.tmp/build.log" >&2
    echo "helm build failed; full log: $out.tmp/build.log" >&2
    exit 1
  fi
  if ! "$out.tmp/helm" version --short | grep -q "^$HELM_VERSION"; then
    echo "built helm reports $("$out.tmp/helm" version --short), want $HELM_VERSION" >&2
    exit 1
  fi
  rm -rf "$out" && mv "$out.tmp" "$out"
  echo "built helm $HELM_VERSION in $(( $(date +%s) - start ))s" >&2
fi

mkdir -p bin
ln -sfn "$bin" bin/helm
