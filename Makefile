# The README's commands. `make test` is what CI runs.
.PHONY: test build demo bench load fuzz check

GO ?= go

build:
	$(GO) build -o bin/toolgate ./cmd/toolgate

# The race detector needs cgo and a C compiler; without them the tests run
# without it rather than not at all.
RACE ?= $(shell [ "$$($(GO) env CGO_ENABLED)" = 1 ] && command -v "$$($(GO) env CC)" >/dev/null && echo -race)

# Installs the pinned npm packages of the end-to-end tests (oidc-provider,
# server-everything, the TypeScript SDK), then runs every test. The Redis
# store's tests start redis-server themselves and skip without it (CI
# installs it: .ci/run).
test:
	npm ci --prefix test/e2e --no-audit --no-fund
	@[ -n "$(RACE)" ] || echo "note: no C compiler for cgo; running the tests without -race"
	$(GO) test $(RACE) -count=1 ./...

check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./auth/ ./proxy/ ./jsonrpc/ ./decorate/ ./policy/ ./authserver/

load:
	bash bench/load.sh

# Runs each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzInspect$$' -fuzztime $(FUZZTIME) ./jsonrpc/
	$(GO) test -run '^$$' -fuzz '^FuzzParseClientID$$' -fuzztime $(FUZZTIME) ./authserver/
	$(GO) test -run '^$$' -fuzz '^FuzzIsURL$$' -fuzztime $(FUZZTIME) ./authserver/clientmeta/
	$(GO) test -run '^$$' -fuzz '^FuzzRedirectMatches$$' -fuzztime $(FUZZTIME) ./authserver/clientmeta/
