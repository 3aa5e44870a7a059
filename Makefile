# Gig'MCP — the two commands a newcomer needs are `make run` and `make test`.

CARGO ?= cargo
DATA_DIR ?= ./.gigmcp-data
LISTEN ?= 127.0.0.1:8080

.PHONY: run test test-deps system-deps build lint bench web web-api test-web test-docker dev-up dev-down

## Build and serve the demo profile (the built-in echo server), the dashboard and a signed demo catalog (built
## from tests/catalog/registry), printing how to connect a client, log in and install a catalog entry.
run: system-deps plugins web
	$(CARGO) build --locked -p gigmcp
	env $$(scripts/demo-catalog.sh $(DATA_DIR) ./target/debug/gigmcp) GIG_DATA_DIR=$(DATA_DIR) GIG_LISTEN=$(LISTEN) \
	  ./target/debug/gigmcp serve --dev

## Install what the tests need (bubblewrap, chromium, pinned npm servers, Node 22, a Python venv) and build the
## dashboard while the workspace compiles (scripts/test-build.sh), then run every test.
test: plugins
	python3 scripts/crate-layers.py
	python3 scripts/module-cycles.py
	CARGO=$(CARGO) scripts/test-build.sh
	CARGO=$(CARGO) python3 scripts/one-build.py
	$(CARGO) test --locked --workspace --no-fail-fast -- --test-threads=4
	scripts/web-e2e.sh

## The Docker image and compose stack, built and started for real (docker/test/run.sh): needs root; installs
## Docker and compose when missing and starts an isolated daemon when none runs.
test-docker:
	docker/test/run.sh

## The development stack: the gateway and an OpenID provider to log in with (docker-compose.dev.yml).
dev-up:
	docker compose -f docker-compose.dev.yml up -d --build --wait
	docker compose -f docker-compose.dev.yml exec -T gateway gigmcp plugin config claims-mapper '{"roles_claim": "/roles"}'
	@echo "Dashboard: http://127.0.0.1:8080 (log in as admin or dev, any password)"
	@echo "Demo token: docker compose -f docker-compose.dev.yml exec gateway gigmcp profile token rotate demo"

dev-down:
	docker compose -f docker-compose.dev.yml down

## The dashboard's browser tests alone (Playwright driving Debian's chromium against a real gateway).
test-web: test-deps plugins
	scripts/web.sh --check
	$(CARGO) build --locked -p gigmcp
	scripts/web-e2e.sh

## Build the dashboard (web/ into web/dist, embedded by the next cargo build); skipped without Node 20.19+.
web:
	scripts/web.sh

## After an API change: rewrite the dashboard's copy of the OpenAPI document and its generated types.
web-api: plugins
	$(CARGO) build --locked -p gigmcp
	./target/debug/gigmcp admin openapi > web/src/api/openapi.json
	cd web && npm run --silent gen:api

test-deps:
	scripts/test-deps.sh >/dev/null

## The sandbox needs bubblewrap, and mkfs.ext4 for servers' state directories; install them when missing (as
## root, on Debian).
system-deps:
	@{ command -v bwrap && PATH="$$PATH:/usr/sbin:/sbin" command -v mkfs.ext4; } >/dev/null 2>&1 || { \
	  echo "installing bubblewrap and e2fsprogs" >&2; \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap e2fsprogs; }

build: plugins web
	$(CARGO) build --locked --release -p gigmcp

lint: plugins
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	python3 scripts/crate-layers.py
	python3 scripts/module-cycles.py

## Measure tools/call latency and throughput (Gig'MCP, its two floors, supergateway), the sandbox's cold start
## (vs bare bwrap) and memory per idle sandbox, the egress proxy (vs direct and mitmproxy) and the plugin hooks
## (vs native Rust), the incremental rebuild after a one-line change in the MCP session code, and the dashboard
## (initial JavaScript, overview and audit load times); writes BENCHMARKS.md.
bench: plugins web
	$(CARGO) build --locked --release -p gigmcp -p gigmcp-bench
	scripts/test-deps.sh >/dev/null
	bench/deps.sh
	bench/run.sh
	target/release/gigmcp-bench egress --gigmcp target/release/gigmcp --mitmdump .bench-deps/venv/bin/mitmdump --out target/egress-bench.md
	cat target/egress-bench.md >> BENCHMARKS.md
	bench/run.sh --parts calls --levels 1,64 --section "Real servers: the TypeScript SDK's echo" \
	  --upstream "$(CURDIR)/tests/deps/node_modules/node/bin/node $(CURDIR)/bench/servers/node-echo.mjs" \
	  --upstream-mount $(CURDIR)/bench/servers --upstream-mount $(CURDIR)/tests/deps/node_modules --out target/bench-node.md
	cat target/bench-node.md >> BENCHMARKS.md
	bench/run.sh --parts calls --levels 1,64 --section "Real servers: the Python SDK's echo" \
	  --upstream "/usr/bin/python3 $(CURDIR)/bench/servers/python-echo.py" \
	  --upstream-mount $(CURDIR)/bench/servers --upstream-mount $(CURDIR)/.test-deps/venv --out target/bench-python.md
	cat target/bench-python.md >> BENCHMARKS.md
	cat bench/real-servers.md >> BENCHMARKS.md
	target/release/gigmcp-bench catalog --gigmcp target/release/gigmcp --out target/catalog-bench.md
	cat target/catalog-bench.md >> BENCHMARKS.md
	$(CARGO) bench --locked -p gigmcp --bench plugin_hooks > target/plugin-hooks.txt
	bench/hooks-section.sh target/plugin-hooks.txt BENCHMARKS.md
	bench/build-cost.sh >> BENCHMARKS.md
	cd web && node bench/dashboard.mjs --gigmcp ../target/release/gigmcp >> ../BENCHMARKS.md

## host/default-plugins/build.rs builds the default plugins (plugins/) for wasm32-wasip2: install that target when
## missing.
.PHONY: plugins
plugins:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
