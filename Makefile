# shipper's build, test and demo entry points. `make help` lists them.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG       := github.com/shipper-dev/shipper
LDFLAGS   := -s -w -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)
# Components the integration tests run; hack/tools.sh builds them once into
# the cache (see docs/development.md, Cached binaries) and skips them afterwards.
TEST_TOOLS := etcd kube-apiserver helm kubectl
# The benchmarks also run crane, the packaging baseline; kubectl (in
# TEST_TOOLS for the upgrade test of deploy/rbac) is the cleanup baseline.
BENCH_TOOLS := $(TEST_TOOLS) crane
# The real node (make e2e): every Kubernetes component, Traefik and
# kube-router (its NetworkPolicy enforcer).
NODE_TOOLS := $(TEST_TOOLS) kube-controller-manager kube-scheduler kubelet kube-proxy traefik kube-router
STATICCHECK_VERSION := v0.8.2

.PHONY: help build image tools tools-all check-installs test test-unit lint bench bench-node stress demo e2e devenv clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## static shipper and shipper-gate (a protected preview's sidecar) binaries in bin/, version stamped
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/shipper ./cmd/shipper
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/shipper-gate ./cmd/shipper-gate

image: ## shipper's GitLab job image, built and pushed by shipper itself: IMAGE=registry/tools/shipper [BASE=alpine:3.22]
	$(if $(BASE),,hack/deps.sh image)
	hack/image.sh

tools: ## build (once) the etcd, kube-apiserver, helm and kubectl the tests run
	hack/tools.sh $(TEST_TOOLS)

tools-all: ## build (once) every binary make test, make e2e, make demo and make bench run (CI does it first)
	hack/tools.sh $(sort $(NODE_TOOLS) $(BENCH_TOOLS))

check-installs: ## the quick installs (npm, apt, small Go tools) run from an empty cache, as on a new machine (minutes)
	hack/check-installs.sh

test: tools ## unit and integration tests against a real apiserver and registry (what CI runs)
	hack/deps.sh test image runtimes browser
	$(GO) test -count=1 -timeout 40m ./...

test-unit: ## unit tests only, no control plane
	$(GO) test -short -count=1 ./...

lint: ## gofmt check, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags e2e ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) -tags e2e ./...

bench: ## benchmarks on the real apiserver and registry (release engine vs helm; package vs tar+crane)
	hack/deps.sh test bench
	hack/tools.sh $(BENCH_TOOLS)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 20x ./internal/...
	SHIPPER_BENCH_DATABASE=1 $(GO) test -run '^$$' -bench CloneVsDump -benchtime 3x -timeout 60m ./internal/database
	$(GO) test -run '^$$' -bench GateLatency -benchtime 3x ./integration
	$(GO) test -run '^$$' -bench Package200MB -benchtime 2x ./integration
	$(GO) test -run '^$$' -bench Prune200 -benchtime 1x -timeout 30m ./integration
	$(GO) test -run '^$$' -bench Scale -benchtime 1x -timeout 60m ./integration

bench-node: ## deploy-to-serving with a per-commit database against without, on the real node (root; run as flock /tmp/shipper-node.lock make bench-node)
	hack/deps.sh test node image
	hack/tools.sh $(NODE_TOOLS)
	$(GO) test -tags e2e -run '^$$' -bench DeployToServing -benchtime 1x -timeout 30m ./e2e

stress: tools ## the stress suite at full count: kill -9 and races, invariants checked after each case (docs/reliability.md)
	hack/deps.sh test
	SHIPPER_STRESS_TRIALS=$${SHIPPER_STRESS_TRIALS:-30} SHIPPER_STRESS_RACE_TRIALS=$${SHIPPER_STRESS_RACE_TRIALS:-50} $(GO) test -count=1 -v -timeout 90m -run 'TestStress' ./integration

demo: build ## the whole pipeline on a real local node, printed step by step (DEMO_KEEP=1 keeps it up)
	hack/deps.sh test node image runtimes npm browser
	hack/tools.sh $(NODE_TOOLS)
	hack/gitlab-ci-local.sh >/dev/null
	SHIPPER_DEMO=1 SHIPPER_DEMO_KEEP=$(DEMO_KEEP) $(GO) test -tags e2e -count=1 -v -timeout 0 -run TestPipelineOnARealNode ./e2e

e2e: ## the whole pipeline on a real node (root: containerd, kubelet, Traefik; see docs/development.md), and the example GitLab pipeline through gitlab-ci-local
	hack/deps.sh test node image runtimes npm browser
	hack/tools.sh $(NODE_TOOLS)
	hack/gitlab-ci-local.sh >/dev/null
	$(GO) test -tags e2e -count=1 -v -timeout 20m ./e2e

devenv: ## just the control plane and registry the tests use, until Ctrl-C
	$(GO) run ./hack/devenv

clean: ## remove build output (the tools cache stays; see docs/development.md)
	rm -rf bin
