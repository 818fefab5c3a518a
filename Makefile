# Cairn: `make run` starts everything on embedded defaults; `make test` runs
# every test against real PostgreSQL and NATS started by the tests.

GO      ?= go
BENCH   ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

BENCH_PKGS := ./integration_test
ifeq ($(BENCH),)
BENCH_PATTERN := ^Benchmark
BENCH_PKGS := ./integration_test ./modules/reporting ./outbox/replay
else ifeq ($(BENCH),relay)
BENCH_PATTERN := ^BenchmarkRelay$$
else ifeq ($(BENCH),ledger)
BENCH_PATTERN := ^BenchmarkLedger$$
else ifeq ($(BENCH),mail)
BENCH_PATTERN := ^BenchmarkAPIUnderMail$$
else ifeq ($(BENCH),metrics)
BENCH_PATTERN := ^BenchmarkMetrics$$
else ifeq ($(BENCH),lake)
BENCH_PATTERN := ^BenchmarkLake$$
else ifeq ($(BENCH),orders)
BENCH_PATTERN := ^BenchmarkOrders$$
else ifeq ($(BENCH),reporting)
BENCH_PATTERN := ^BenchmarkReporting$$
BENCH_PKGS := ./modules/reporting
else ifeq ($(BENCH),replay)
BENCH_PATTERN := ^BenchmarkReplay$$
BENCH_PKGS := ./outbox/replay
else
BENCH_PATTERN := $(BENCH)
BENCH_PKGS := ./integration_test ./modules/reporting ./outbox/replay
endif

# bash for pipefail: a test run is teed to a log and must still fail make.
SHELL := /bin/bash
# After a failed run, the failures again at the end: CI shows the tail of
# the output, and the many log lines of a long run hide them otherwise.
FAILURES = { echo "== failures (full output above; also in $(1))"; grep -E '^(--- FAIL|FAIL|panic:|fatal error:)|^[[:space:]]+[A-Za-z0-9_]+_test\.go:[0-9]+:' $(1) | head -200; exit 1; }

.PHONY: run test test-ui bench build lint postgres chromium docker

## run: build and start Cairn with its own PostgreSQL and NATS under ./data
run: postgres build
	./bin/cairn serve

## build: the single static binary, bin/cairn
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/cairn .

## test: vet, unit and integration tests (real PostgreSQL and NATS), outbox/ under -race
test: postgres
	$(GO) vet ./...
	set -o pipefail; $(GO) test -count=1 -timeout 40m ./... 2>&1 | tee test.out || $(call FAILURES,test.out)
# The outbox runtime is concurrent: run it again under the race detector.
# TestStaysAwakeUnderSteadyLoad compares idle counts under load, which the
# detector's slowdown distorts; it ran without -race just above.
	set -o pipefail; $(GO) test -race -count=1 -timeout 20m -skip '^TestStaysAwakeUnderSteadyLoad$$' ./outbox/... 2>&1 | tee test-race.out || $(call FAILURES,test-race.out)
# The lake's Parquet files read back by DuckDB: a module of its own, because
# DuckDB's driver needs cgo and the cairn binary is built without it.
	cd integration_test/duckdb && CGO_ENABLED=1 $(GO) test -count=1 -timeout 10m ./...

## test-ui: browser tests of the operator console: Playwright (npm) driving Debian's Chromium, axe-core;
## screenshots and Cairn's log go to e2e/artifacts
test-ui: postgres chromium build
	cd e2e && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
	cd e2e && npx playwright test

## bench: benchmarks (BENCH=relay, ledger, mail, metrics, lake, orders, replay or reporting for one); ends with one JSON line
bench: postgres
	$(GO) test $(BENCH_PKGS) -run '^$$' -bench '$(BENCH_PATTERN)' -benchtime 1x -timeout 60m | tee bench.out
	@grep '^{"bench"' bench.out | sed -e 's/^{"bench":"[a-z]*",*//' -e 's/}$$//' | paste -sd, - | sed -e 's/^/{/' -e 's/$$/}/'

## lint: gofmt, go vet and staticcheck
lint:
	@test -z "$$(gofmt -l .)" || { echo "not gofmt'd:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
# integration_test/duckdb is a module of its own that requires this one: a
# dependency added here must reach its go.mod too, or its test stops make test.
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod is not tidy: go mod tidy"; exit 1; }
	@cd integration_test/duckdb && $(GO) mod tidy -diff >/dev/null || { echo "integration_test/duckdb/go.mod is not tidy: cd integration_test/duckdb && go mod tidy"; exit 1; }

## postgres: make sure PostgreSQL server binaries are installed (apt, as root)
postgres:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	    || { command -v pg_config >/dev/null 2>&1 && test -x "$$(pg_config --bindir)/initdb"; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing PostgreSQL server binaries (Debian package postgresql)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else \
	    echo "PostgreSQL server binaries not found: install the Debian package postgresql," \
	         "or set CAIRN_DATABASE_URL to use your own server"; exit 1; \
	fi

## chromium: make sure Debian's Chromium is installed (apt, as root); the browser tests never download one
chromium:
	@if test -x "$${CHROMIUM:-/usr/bin/chromium}"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Chromium (Debian package chromium)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
	    echo "Chromium not found: install the Debian package chromium, or set CHROMIUM to its path"; exit 1; \
	fi

## docker: the container image (needs a Docker engine)
docker:
	docker build -t cairn:$(VERSION) .
