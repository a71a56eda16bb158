# Atoll developer commands. The two that matter on a fresh machine:
#   make run   — start atoll-cp standalone (universal, in-memory store, default mesh)
#   make test  — install what the tests need (when missing) and run every test

GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X github.com/atoll-mesh/atoll/pkg/version.version=$(VERSION) -X github.com/atoll-mesh/atoll/pkg/version.gitCommit=$(COMMIT)
# Packages whose concurrency is checked with the race detector in make test.
RACE_PKGS ?= ./pkg/store/... ./pkg/manager/... ./pkg/apiserver/... ./pkg/component/... ./app/atoll-dp/... ./pkg/xds/sync/... ./pkg/xds/ads/... ./pkg/xds/cache/... ./pkg/xds/server/... ./pkg/xds/identity/... ./pkg/xds/snapshot/...

.PHONY: build run test test-deps bench generate check fmt vet clean

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./app/... ./docs/examples/grpc-echo

run:
	$(GO) run -ldflags "$(LDFLAGS)" ./app/atoll-cp run

test-deps:
	./tools/test-deps.sh

test: test-deps vet
	$(GO) test -count=1 -timeout 25m ./...
	$(GO) test -count=1 -race -timeout 25m $(RACE_PKGS)

vet:
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./test/bench/...

generate:
	$(GO) run ./tools/gendocs descriptions
	$(GO) run ./tools/gendocs docs

check: vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(MAKE) generate
	@git diff --exit-code -- docs/reference api/schema || (echo "make generate changed files: commit them"; exit 1)

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)
