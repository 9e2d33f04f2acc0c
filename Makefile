# checkpoint_exporter. `make test` is what CI runs (.ci/run).
GO       ?= go
BINARY   ?= checkpoint_exporter
FUZZTIME ?= 10s
VERSION  := $(shell cat VERSION)
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH   := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VPKG     := github.com/prometheus/common/version
LDFLAGS  := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) \
            -X $(VPKG).BuildUser=$(shell whoami)@$(shell hostname) -X $(VPKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build run test unit lint rules fuzz e2e demo bench generate clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BINARY) ./cmd/checkpoint_exporter

# Run the exporter on ./models (created with a small demo tree if missing).
run: build
	@test -d models || ./$(BINARY) simulate --dir=models --size=1MiB --interval=10ms --saves=5 >/dev/null 2>&1
	./$(BINARY) --checkpoint.dir=./models

# Everything CI checks.
test: lint unit rules fuzz e2e

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

rules:
	promtool check rules alerts/checkpoint_exporter.rules.yml
	promtool test rules alerts/checkpoint_exporter.rules_test.yml
	amtool check-config alerts/alertmanager.example.yml

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecodeAndMatch -fuzztime=$(FUZZTIME) ./pruner/

e2e:
	$(GO) test -count=1 -timeout=20m -tags=e2e -v ./test/e2e/

demo: build
	$(GO) run ./test/e2e/demo --exporter=./$(BINARY)

bench: build
	./bench/compare.sh

generate:
	$(GO) generate ./...

clean:
	rm -f $(BINARY)
