# checkpoint_exporter. `make deps test` is what CI runs (.ci/run).
GO       ?= go
# Where go.dev's installer puts Go, which sudo's PATH (secure_path) leaves out:
# `sudo make deps test` finds it there. A go earlier in PATH still wins.
ifeq ($(filter /usr/local/go/bin,$(subst :, ,$(PATH))),)
export PATH := $(PATH):/usr/local/go/bin
endif
BINARY   ?= checkpoint_exporter
FUZZTIME ?= 10s
VERSION  := $(shell cat VERSION)
REVISION := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
BRANCH   := $(shell git rev-parse --abbrev-ref HEAD 2>/dev/null || echo unknown)
VPKG     := github.com/prometheus/common/version
LDFLAGS  := -X $(VPKG).Version=$(VERSION) -X $(VPKG).Revision=$(REVISION) -X $(VPKG).Branch=$(BRANCH) \
            -X $(VPKG).BuildUser=$(shell whoami)@$(shell uname -n) -X $(VPKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)

.PHONY: all build run deps check-deps test unit lint rules fuzz e2e demo bench generate clean release release-test image helm k8s-examples screenshots

# Release artefacts: static binaries under .build/<os>-<arch>/ (what the
# Dockerfile copies), tarballs and their checksums under $(DIST).
PLATFORMS ?= linux/amd64 linux/arm64
DIST      ?= dist
CONTAINER ?= docker
IMAGE     ?= checkpoint-exporter
# Tarball entries carry the commit's time, so a rebuild of one commit gives the same bytes.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || date +%s)

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BINARY) ./cmd/checkpoint_exporter

# Run the exporter on ./models (created with a small demo tree if missing).
run: build
	@test -d models || $(GO) run ./test/trainer --dir=models --size=1MiB --interval=10ms --saves=5 >/dev/null 2>&1
	./$(BINARY) --checkpoint.dir=./models

# The Debian packages the tests need, from the one list deps/debian.txt: make
# deps installs them (as root; otherwise it prints the sudo line), make
# check-deps names what is missing and make test does that first, before
# anything starts.
deps:
	@sh deps/deps.sh install

check-deps:
	@GO='$(GO)' sh deps/deps.sh check

# Everything CI checks. check-deps first: a missing package stops it at once,
# never half-way through.
test: check-deps lint unit rules fuzz helm release-test e2e

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
	$(GO) test -run='^$$' -fuzz=FuzzDecodeAndMatch -fuzztime=$(FUZZTIME) ./alertmanager/
	$(GO) test -run='^$$' -fuzz=FuzzCheckFile -fuzztime=$(FUZZTIME) ./layout/

e2e:
	$(GO) test -count=1 -timeout=20m -tags=e2e -v ./test/e2e/

demo: build
	$(GO) run ./test/e2e/demo --exporter=./$(BINARY)

bench: build
	./bench/compare.sh

generate:
	$(GO) generate ./...

# The README's screenshots of the status page: the page of a simulated day
# (statuspage's TestDemoPage), in headless chromium, offline.
CHROMIUM ?= chromium
screenshots:
	set -e; tmp=$$(mktemp -d); \
	$(GO) test -count=1 -run TestDemoPage ./statuspage/ -demo=$$tmp; \
	for l in en zh-CN; do \
	  $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
	    --disable-component-update --disable-sync --user-data-dir=$$tmp/profile --hide-scrollbars --window-size=1280,1600 \
	    --screenshot=$(CURDIR)/docs/status-$$l.png file://$$tmp/status-$$l.html 2>/dev/null; \
	done; rm -rf $$tmp

release:
	rm -rf .build $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  name=$(BINARY)-$(VERSION).$$os-$$arch; stage=.build/stage/$$name; \
	  echo ">> $$name"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" \
	    -o .build/$$os-$$arch/$(BINARY) ./cmd/checkpoint_exporter; \
	  mkdir -p $$stage; \
	  cp .build/$$os-$$arch/$(BINARY) README.md README.zh-CN.md LICENSE CHANGELOG.md $$stage/; \
	  cp -R examples $$stage/examples; \
	  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@$(SOURCE_DATE_EPOCH) \
	    -C .build/stage -cf - $$name | gzip -n >$(DIST)/$$name.tar.gz; \
	done
	rm -rf .build/stage
	cd $(DIST) && sha256sum *.tar.gz >sha256sums.txt && cat sha256sums.txt

# Builds the release and the container image offline and runs both (needs root, buildah, runc).
release-test:
	$(GO) test -count=1 -timeout=10m -tags=release -v ./test/release/

# The Helm chart (deploy/helm/checkpoint-exporter): lint, template, strict decoding and
# promtool over a values matrix, in its own Go module (Helm and k8s.io stay out of go.mod).
helm:
	cd deploy/helm/test && $(GO) vet ./... && $(GO) test -count=1 ./...

# examples/kubernetes/*.yaml from the chart and *.values.yaml.
k8s-examples:
	cd deploy/helm/test && $(GO) test -count=1 -run TestExamplesAreRenderedFromTheChart -update ./...

# The container image, for the host's architecture (make release first).
image:
	$(CONTAINER) build -t $(IMAGE):$(VERSION) .

clean:
	rm -rf $(BINARY) .build $(DIST)
