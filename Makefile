# Tally's Makefile. `make help` lists the targets. `make run` and `make test`
# each install what they need first, so both work on a fresh Debian/Ubuntu
# machine (as root or with sudo).

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
BIN      := bin/tally
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/tallyhq/tally.Version=$(VERSION)
DATA_DIR ?= ./tally-data
ADDR     ?= 127.0.0.1:8080
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# Where `make deps-ocr` puts ONNX Runtime and the PaddleOCR models: the
# directory tally looks in by default (TALLY_PADDLE_DIR overrides both).
PADDLE_DIR ?= $(or $(TALLY_PADDLE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tally/paddle)
# The Lambda binaries are static: nodynamic keeps the image codecs from
# loading system libraries with purego, nopaddle leaves out PaddleOCR (ONNX
# Runtime is loaded at run time, which a static binary cannot do).
LAMBDA_TAGS := lambda.norpc,nodynamic,nopaddle
# Packages whose tests use goroutines or other processes run under -race.
RACE_PKGS ?= ./...
# Every package runs under -race, dependencies too. (Building wazero or
# modernc.org's SQLite without instrumentation, with -gcflags=PATTERN=-race=false,
# would save minutes, but made the race detector report false races in
# encoding/json's type cache: the whole program stays instrumented.)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# apt_install installs the Debian packages among $(1) that are missing.
define apt_install
	missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install what building and running needs (Go, if absent)
	@command -v $(GO) >/dev/null 2>&1 || { $(call apt_install,golang-go ca-certificates git); }
	@$(GO) version

.PHONY: deps-ocr
deps-ocr: ## install the OCR engines if absent: Tesseract with English data, and PaddleOCR (ONNX Runtime + models, checksummed)
	@command -v tesseract >/dev/null 2>&1 && [ -n "$$(tesseract --list-langs 2>/dev/null | grep -x eng)" ] || { $(call apt_install,tesseract-ocr tesseract-ocr-eng); }
	@tesseract --version 2>&1 | head -1
	@command -v npm >/dev/null 2>&1 || command -v curl >/dev/null 2>&1 || { $(call apt_install,curl ca-certificates); }
	@./scripts/deps-paddle.sh "$(PADDLE_DIR)"

.PHONY: deps-test
deps-test: deps deps-ocr ## install what the tests need (moto_server for the AWS adapters, Chromium for the web app)
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { $(call apt_install,chromium); }
	@command -v moto_server >/dev/null 2>&1 || { \
		command -v pip3 >/dev/null 2>&1 || { $(call apt_install,python3-pip); }; \
		pip3 install --quiet 'moto[server]' 2>/dev/null || pip3 install --quiet --break-system-packages 'moto[server]'; }
	@command -v moto_server >/dev/null 2>&1 && echo "moto_server: $$(command -v moto_server)"

.PHONY: build
build: deps ## build bin/tally
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tally

LAMBDA_ROLES := process compact ocr upload

.PHONY: lambda
lambda: deps ## build dist/<role>.zip (bootstrap for provided.al2023, linux/arm64) for each Lambda role
	@mkdir -p dist bin/lambda
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -tags $(LAMBDA_TAGS) -ldflags '$(LDFLAGS)' -o bin/lambda/bootstrap ./cmd/tally
	@for r in $(LAMBDA_ROLES); do $(GO) run ./scripts/lambdazip -o dist/$$r.zip bin/lambda/bootstrap; done
	@ls -l dist/*.zip

.PHONY: run
run: build deps-ocr ## install, build, and run `tally serve` on embedded defaults (127.0.0.1:8080, ./tally-data)
	./$(BIN) serve -addr $(ADDR) -data $(DATA_DIR)

.PHONY: lint
lint: deps ## gofmt, go vet and staticcheck (the main module and infra/)
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd infra && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...

.PHONY: infra-test
infra-test: deps ## test the Pulumi program under mocks (no cloud; the committed graphs must be current)
	cd infra && $(GO) test ./...

.PHONY: infra-graph
infra-graph: deps ## regenerate infra/graphs/*.json (every resource, inputs and dependencies, under mocks)
	cd infra && $(GO) run ./cmd/graph -out graphs

.PHONY: infra-cost
infra-cost: deps ## print the monthly cost of each network configuration (STACK=dev reads infra/Pulumi.dev.yaml)
	cd infra && $(GO) run ./cmd/cost $(if $(STACK),-stack $(STACK))

.PHONY: test
test: deps-test lint ## install what is missing, then lint and run every test (with -race), the infra tests too
	$(GO) test -race -timeout 20m $(RACE_PKGS)
	cd infra && $(GO) test -timeout 10m ./...
	$(GO) test -timeout 10m -run 'Alloc|Recall' ./vector/...  # allocation counts are meaningless under -race; recall at full size is too slow under it

.PHONY: bench
bench: deps deps-ocr ## run the benchmarks and write BENCHMARKS.md (PKGS="./ocrstage …" re-runs only those)
	PKGS="$(PKGS)" ./scripts/bench.sh BENCHMARKS.md

# FUZZ lists package:target pairs; each runs FUZZTIME (60s) in turn. What a
# fuzzer finds lands in that package's testdata/fuzz, which `make test` replays.
FUZZ := ./ocr:FuzzDecodeResult ./ocrjob:FuzzDecodeJobMessage ./ocrjob:FuzzDecodeResultMessage \
	./compaction:FuzzDecode ./label:FuzzList ./label/llm:FuzzRefined ./label/llm:FuzzDecodeCompletion \
	./cmd/tally:FuzzListReceiptsQuery ./cmd/tally:FuzzCorrectReceipt ./pipeline:FuzzParseFilter \
	./internal/lambdahost:FuzzSQSEvent ./internal/lambdahost:FuzzHTTPEvent ./upload:FuzzReceiptsUpload \
	./web:FuzzCorrectionForm ./web:FuzzUploadForm ./web:FuzzListFilters
FUZZTIME ?= 60s

.PHONY: fuzz
fuzz: deps ## run every fuzz target for FUZZTIME each (not part of make test; FUZZ="./pkg:FuzzX" runs one)
	@set -e; for t in $(FUZZ); do pkg=$${t%%:*}; name=$${t#*:}; \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME); done

.PHONY: clean
clean: ## remove build output (not ./tally-data)
	rm -rf bin dist
