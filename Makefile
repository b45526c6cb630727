# Heartbeat: build, run and test. `make test` is what CI runs (.ci/run).
VERSION  ?= 0.1.0
GO       ?= go
BIN      := bin/heartbeat
LDFLAGS  := -s -w -X main.version=$(VERSION)
# grpcnotrace drops grpc's golang.org/x/net/trace debug pages, which the
# sidecar never serves (about 120 KB of the binary).
TAGS     := grpcnotrace
# Execution counts, not durations: a duration-based -fuzztime in Go 1.26 can
# fail with a bare "context deadline exceeded" and no crasher (golang/go#75804,
# fixed in 1.27). Each count is about 20 s of fuzzing on the CI machine.
FUZZ_SIZE_EXECS   ?= 300000x
FUZZ_YAML_EXECS   ?= 150000x
FUZZ_JSON_EXECS   ?= 300000x
FUZZ_TIMING_EXECS ?= 150000x

export GOPROXY ?= https://proxy.golang.org
export GOFLAGS ?= -mod=mod
export CGO_ENABLED ?= 0
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck

.PHONY: all build run test unit lint fuzz bench bench-scheduler soak soak-ci collector jaeger e2e stack stack-down image image-test k8s-validate k8s-sync install install-test deploy-test clean

all: build

## build: the static binary bin/heartbeat
build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) .

## run: the sidecar on :8080 with its defaults; no other service needed
run: build
	./$(BIN) serve --config deploy/run.yaml

## test: every test CI runs
test: lint unit fuzz e2e status-browser deploy-test soak-ci

# The network lab tests measure rates and losses through real namespaces: they
# run on their own, one package at a time, so the other packages' tests do not
# take the CPU that the shaped links are measured with.
LAB_TESTS := ^Test(Lab|ThroughputLab)

## unit: go test, fuzz seed corpora included; then the network lab tests, which
## run bin/heartbeat in namespaces
unit: build lab-tools
	@bash -c 'source scripts/lib.sh && need_apt prometheus' # promtool: the mesh test evaluates its quorum rule
	HEARTBEAT_BIN=$(abspath $(BIN)) $(GO) test -count=1 -skip '$(LAB_TESTS)' ./...
	HEARTBEAT_BIN=$(abspath $(BIN)) $(GO) test -count=1 -p 1 -run '$(LAB_TESTS)' ./...

## lab-tools: iptables for the network lab tests (as root, which the lab needs)
.PHONY: lab-tools
lab-tools:
	@[ "$$(id -u)" -ne 0 ] || bash -c 'source scripts/lib.sh && need_apt iptables iproute2 util-linux'

$(STATICCHECK):
	@bash -c 'source scripts/lib.sh && need_go_tool staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2'

## lint: gofmt, go vet, staticcheck
lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./e2e/...
	$(GO) vet -tags browser .
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags e2e ./e2e/...
	$(STATICCHECK) -tags browser .

.PHONY: status-browser
## status-browser: /status in headless Chromium against three sidecars on 127.0.0.2-4; screenshots in bin/status-*.png
status-browser:
	@bash -c 'source scripts/lib.sh && need_apt chromium fonts-liberation'
	$(GO) test -tags browser -count=1 -run '^TestStatusPageInChromium$$' -v .

## fuzz: each fuzzer for a bounded number of executions beyond its corpus
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseSize$$' -fuzztime $(FUZZ_SIZE_EXECS) ./payload
	$(GO) test -run '^$$' -fuzz '^FuzzParseYAML$$' -fuzztime $(FUZZ_YAML_EXECS) ./checks/config
	$(GO) test -run '^$$' -fuzz '^FuzzParseLegacyJSON$$' -fuzztime $(FUZZ_JSON_EXECS) ./checks/config
	$(GO) test -run '^$$' -fuzz '^FuzzParseServerTiming$$' -fuzztime $(FUZZ_TIMING_EXECS) ./checks/probe

## bench: throughput, latency and memory against nginx, printed with ratios
bench: build
	bash scripts/bench.sh
	bash scripts/bench-scheduler.sh
	$(GO) run ./bench/meshsim
	$(MAKE) --no-print-directory bench-status

.PHONY: bench-status
## bench-status: the /status history's memory and the page's render time at 10,000 checks
bench-status:
	$(GO) test -run '^$$' -bench '^BenchmarkStatus(HistoryMemory|Page)$$' -benchtime 5x -count 3 ./checks

## bench-scheduler: 1,000 and 10,000 HTTP checks beside blackbox_exporter
bench-scheduler: build
	bash scripts/bench-scheduler.sh

## collector: bin/otelcol-heartbeat from collector/builder-config.yaml (cached)
collector:
	bash scripts/collector.sh

## jaeger: bin/jaeger (Jaeger v2) from its Go module (cached)
jaeger:
	bash scripts/jaeger.sh

.PHONY: fluent-bit jaeger-ui
## fluent-bit: bin/fluent-bit from $$FLUENT_BIT, PATH, or built from ../shared/vendor/fluent-bit (cached)
fluent-bit:
	bash scripts/fluent-bit.sh

## jaeger-ui: bin/jaeger-ui, the built Jaeger UI unpacked from ../shared/vendor/jaeger-ui (cached)
jaeger-ui:
	bash scripts/jaeger-ui.sh

## e2e: otelcol validate, then the end-to-end pipeline test
e2e: build
	bash scripts/e2e.sh

## stack: the e2e pipeline left running on free ports, URLs printed; stack-down stops it
stack: build
	bash scripts/stack.sh up
stack-down:
	bash scripts/stack.sh down

PREFIX  ?= /usr/local
DESTDIR ?=

## image: the container image localhost/heartbeat:$(VERSION), built offline with buildah (Dockerfile target "prebuilt")
image: build
	bash scripts/image.sh --no-test

## image-test: build the image, run it with podman, check endpoints, user and sizes (< 20 MB, < 8 MB gzipped)
image-test: build
	bash scripts/image.sh

## k8s-validate: render k8s/, validate every object (strict types, cross-checks, kube-apiserver dry run), promtool rules
k8s-validate:
	bash scripts/k8s-validate.sh

## k8s-sync: refresh k8s/'s generated copies after editing otel-collector.yaml or k8s/monitoring/heartbeat.rules.yaml
k8s-sync:
	bash scripts/k8s-validate.sh --sync

## install: binary, systemd unit, example /etc/heartbeat.config (PREFIX, DESTDIR; keeps an existing config)
install: build
	PREFIX='$(PREFIX)' DESTDIR='$(DESTDIR)' bash scripts/install.sh

## install-test: make install into temporary DESTDIRs; systemd-analyze verify and security on the unit
install-test: build
	bash scripts/install-test.sh

## deploy-test: everything CI runs for deployment
deploy-test: image-test k8s-validate install-test

DURATION ?=
## soak: 1,000,000 requests (or DURATION=30m of load) with 1,000 checks and a live collector
soak: build
	DURATION=$(DURATION) bash scripts/soak.sh

## soak-ci: the soak's CI form
soak-ci: build
	REQUESTS=1000000 bash scripts/soak.sh

clean:
	rm -rf bin
