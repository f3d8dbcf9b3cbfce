# kelp — two commands on a fresh Debian 12 machine:
#   make demo   boot the Debian kernel under QEMU and live patch it
#   make test   every test, including the ones that boot the kernel
GO      ?= go
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)
# A package version must start with a digit: before the first tag it is
# 0.1.0~git<commit>.
VERSION ?= $(shell git describe --tags --dirty 2>/dev/null || echo 0.1.0~git$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)

.PHONY: all deps build demo test vet bench fuzz soak corpus clean

all: build

deps: build
	$(SUDO) env KELP=bin/kelp bash scripts/install-deps.sh

# bin/kelp is what runs as root at boot; bin/kelp-package (behind
# `kelp package`) carries the packaging library.
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/kelp ./cmd/kelp
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/kelp-package ./cmd/kelp-package

demo: deps
	$(GO) run ./internal/demo

vet:
	$(GO) vet ./...

test: deps vet
	$(GO) test -count=1 -timeout 80m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 5x ./...
	$(GO) run ./bench

# Every fuzz target for FUZZTIME each (make test runs their seed corpora);
# FUZZ=REGEXP picks targets; scripts/fuzz.sh says how a run ends.
FUZZTIME ?= 10m
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash scripts/fuzz.sh

# SOAK_CYCLES load/unload cycles of one livepatch in one boot, every cycle
# checked, then concurrent loads and unloads (make test runs 25 cycles).
SOAK_CYCLES ?= 500
soak: deps
	$(GO) test -count=1 -timeout 4h -run '^TestSoakAndRace$$' -v ./internal/selftests -soak.cycles $(SOAK_CYCLES)

# The real-fix corpus: every small .c change between two Debian
# linux-source-6.1 versions built with kelp for the older kernel and loaded
# in one boot of it; writes docs/corpus.md (CORPUS_FLAGS: e.g. -every 3).
corpus: deps
	$(GO) run ./scripts/realfix $(CORPUS_FLAGS)

clean:
	rm -rf bin
