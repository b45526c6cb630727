# syntax=docker/dockerfile:1
#
# heartbeat: one static binary on an empty base image, running as UID 65532.
#
#   docker build -t heartbeat .                        # builds the binary in a golang stage (needs a registry)
#   make image                                         # offline: copies bin/heartbeat (target "prebuilt")
#   buildah bud --target prebuilt -t heartbeat .       # what `make image` runs, after `make build`
#
# Both targets produce the same runtime layout: /heartbeat, the CA bundle, no
# shell, no package manager, no users other than the numeric 65532.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Module downloads get their own layer so source edits do not refetch them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -tags grpcnotrace -ldflags "-s -w -X main.version=${VERSION}" -o /out/heartbeat . \
 && /out/heartbeat version

# runtime holds everything both final targets share; it has no files yet.
FROM scratch AS runtime
LABEL org.opencontainers.image.title="heartbeat" \
      org.opencontainers.image.description="OpenTelemetry-native network heartbeat sidecar" \
      org.opencontainers.image.source="https://github.com/heartbeat-sidecar/heartbeat"
# The distroless "nonroot" UID/GID: numeric, so no /etc/passwd is needed and
# Kubernetes' runAsNonRoot can verify it from the image config.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/heartbeat"]
CMD ["serve"]

# prebuilt: for offline builds (make image). scripts/image.sh puts the binary
# from `make build` and the host's Debian CA bundle into bin/ first.
FROM runtime AS prebuilt
COPY --chmod=0444 bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chmod=0555 bin/heartbeat /heartbeat

# The default (last) target: everything built inside the golang stage.
FROM runtime AS default
COPY --from=build --chmod=0444 /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chmod=0555 /out/heartbeat /heartbeat
