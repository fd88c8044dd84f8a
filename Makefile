# Outpost — make help lists the targets.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)
BIN      := bin
export CGO_ENABLED ?= 0

.PHONY: help build run test deps lint bench e2e boot-test clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/outpost and bin/outpost-agent
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/outpost ./cmd/outpost
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/outpost-agent ./cmd/outpost-agent

run: ## run the hub on SQLite in ./outpost-data with a simulated demo fleet
	$(GO) run -ldflags '$(LDFLAGS)' ./cmd/outpost server --demo

deps: ## install what the tests need (Debian packages; needs root or sudo); test also builds kube-apiserver once (cached)
	./scripts/deps.sh

test: deps ## install test dependencies, vet, and run every test (unit + integration)
	./scripts/build-kube.sh >/dev/null
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: ## run the benchmarks (store, hub) and print their figures
	$(GO) test -run '^$$' -bench . -benchmem ./...

e2e: deps ## run only the end-to-end tests (real binaries, real sockets)
	$(GO) test -count=1 -v -run 'TestIntegration' ./test/...

boot-test: deps ## boot our own image in QEMU against a real hub (see docs/staging.md)
	./scripts/fetch-kernel.sh >/dev/null
	$(GO) test -count=1 -v -timeout 15m -run TestIntegrationBoot ./test/boot/

clean: ## remove build output
	rm -rf $(BIN)
