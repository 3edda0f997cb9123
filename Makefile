# vrata-mirror. The two commands a new machine needs:
#   make run    a local Envoy with the filter, mirroring real requests
#   make test   every test: native unit tests, the wasm host harness, and
#               end-to-end tests through the real Envoy 1.40
SHELL := /bin/bash
WASM := target/wasm32-wasip1/release/vrata_mirror.wasm
export VRATA_WASM := $(CURDIR)/$(WASM)

.PHONY: build envoy test unit lint run bench fuzz clean

build:
	@./scripts/ensure-wasm-target.sh
	cargo build --target wasm32-wasip1 --release
	@echo "module: $(WASM) ($$(stat -c %s $(WASM)) bytes)"

envoy:
	@./scripts/ensure-envoy.sh >/dev/null

# Tests find Envoy through VRATA_ENVOY and the module through VRATA_WASM;
# without them they fail and say how to get them.
test: build envoy lint
	VRATA_ENVOY=$$(./scripts/ensure-envoy.sh) cargo test -- --test-threads=2

unit:
	cargo test --lib

lint:
	cargo clippy --target wasm32-wasip1 --release -- -D warnings
	cargo clippy --all-targets -- -D warnings

run: build envoy
	@./scripts/run.sh

bench: build envoy
	@./bench/run.sh
	cargo run --quiet --example handoff_latency -- 2000 4

fuzz:
	@./scripts/fuzz.sh

clean:
	cargo clean
