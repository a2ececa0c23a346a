# ehc-agent — see README.md. `make demo` and `make test` are the quick start.
GO        ?= go
BIN       := bin/ehc-agent
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Packages whose tests run with the race detector: the pipeline and the codecs, and
# everything that owns goroutines.
RACE_PKGS := ./agent/... ./protocol/... ./offline/... ./drivers/... ./internal/... ./configs/... ./scripts/package/...

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
	$(GO) test -run '^$$' -bench . -skip BenchmarkCardToEvent -benchmem ./protocol/... ./offline/... ./drivers/... ./agent/...
	$(GO) test -run '^$$' -bench BenchmarkCardToEvent -benchtime 20x ./agent/cmd/ehc-agent
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./agent/cmd/ehc-agent
	./$(BIN) sim bench --json bin/bench-e2e.json
	cd scripts/bench && $(GO) test -count=1 . && $(GO) build -o ../../bin/sidebyside ./cmd/sidebyside
	./bin/sidebyside -callgrind -json bin/bench-sidebyside.json

clean:
	rm -rf bin dist .demo

# --- Packaging and cross-builds (docs/INSTALL.md) ---
DIST        ?= dist
# A Debian version must start with a digit: the tag without its "v", else a snapshot
# version that sorts below any release and above older snapshots.
DEB_VERSION ?= $(shell v=$$(git describe --tags --match 'v[0-9]*' 2>/dev/null) && echo $${v\#v} || \
                 echo 0.0~git$$(git log -1 --format=%cd.%h --date=format:%Y%m%d%H%M 2>/dev/null || echo 0))
DEB_ARCH    ?= $(shell $(GO) env GOARCH)

.PHONY: deb dist

# The .deb of the binary built for this machine (`make build`), with nfpm run from its
# own module so that it never enters the agent's go.mod.
# GOFLAGS lose -race for nfpm: an instrumented gzip of the binary takes ten times longer.
deb: build
	VERSION='$(DEB_VERSION)' ARCH='$(DEB_ARCH)' BIN='$(abspath $(BIN))' GOFLAGS='$(filter-out -race,$(GOFLAGS))' \
		$(GO) -C scripts/package/nfpm run . -config ../nfpm.yaml \
		-target '$(abspath $(DIST))/ehc-agent_$(DEB_VERSION)_$(DEB_ARCH).deb'
	@echo '$(DIST)/ehc-agent_$(DEB_VERSION)_$(DEB_ARCH).deb'

# Release binaries: linux/amd64 and linux/arm64 with cgo (USB, PC/SC; arm64 through
# Debian's cross compiler and arm64 libraries, installed by scripts/install-cross.sh),
# windows/amd64 without cgo, hence without USB.
DIST_LDFLAGS := -s -w $(LDFLAGS)
dist:
	bash scripts/install-cross.sh
	mkdir -p $(DIST)
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 \
		$(GO) build -trimpath -ldflags "$(DIST_LDFLAGS)" -o $(DIST)/ehc-agent-linux-amd64 ./agent/cmd/ehc-agent
	CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc \
		PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
		$(GO) build -trimpath -ldflags "$(DIST_LDFLAGS)" -o $(DIST)/ehc-agent-linux-arm64 ./agent/cmd/ehc-agent
	CGO_ENABLED=0 GOOS=windows GOARCH=amd64 \
		$(GO) build -trimpath -ldflags "$(DIST_LDFLAGS)" -o $(DIST)/ehc-agent-windows-amd64.exe ./agent/cmd/ehc-agent
	@ls -l $(DIST)/ehc-agent-*

# Real-USB tests (issue 8): the usbhid driver through gousb inside a throw-away QEMU guest
# under TCG, on QEMU's usb-kbd and a dummy_hcd HID POS gadget (scripts/usbtest). Installs
# QEMU if missing; the guest kernel is downloaded once into .cache/usbtest (or
# $XDG_CACHE_HOME/ehc-agent/usbtest).
.PHONY: test-usb
test-usb:
	bash scripts/install-usb-deps.sh
	$(GO) test -tags usbqemu -count=1 -timeout 5m -v ./scripts/usbtest/
