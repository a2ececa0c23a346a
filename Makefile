# ehc-agent — see README.md. `make demo` and `make test` are the quick start.
GO        ?= go
BIN       := bin/ehc-agent
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Packages whose tests run with the race detector: the pipeline and the codecs, and
# everything that owns goroutines.
RACE_PKGS := ./agent/... ./protocol/... ./offline/... ./drivers/... ./internal/...

.PHONY: all build demo test vet race fuzz bench deps clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./agent/cmd/ehc-agent

deps:
	bash scripts/install-deps.sh

# The demo: virtual scanner (a real pty) fed with fresh EHC1 and other codes, the agent
# on configs/demo.yaml, one line per identity event until Ctrl-C.
demo: deps build
	bash scripts/demo.sh

# Every test: vet, then all packages with -race (virtual devices included).
test: vet
	$(GO) test -race -count=1 -timeout 15m $(RACE_PKGS)

vet:
	@unformatted=$$(gofmt -l agent drivers protocol offline internal); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

# Each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	bash scripts/fuzz.sh $(FUZZTIME)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./protocol/... ./offline/... ./drivers/... ./agent/...

clean:
	rm -rf bin dist .demo
