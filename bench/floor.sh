#!/usr/bin/env bash
# What does the filter cost when it mirrors nothing, beyond what any
# proxy-wasm filter costs Envoy per request? Builds bench/floor (an HTTP
# filter that does nothing, with the same exports as `make build` leaves)
# and pairs it run for run with the real module under the `wasm0` config:
#
#   bench/floor.sh [shape=get|post] [rounds=8] [seconds=5]
#
# A is vrata_mirror.wasm (percentage 0), B the do-nothing filter; the
# paired CPU difference B-A is minus the filter's own cost per request.
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-get}; rounds=${2:-8}; seconds=${3:-5}
make --no-print-directory build >&2
unused=$(make --no-print-directory -s print-unused-callbacks)
(cd bench/floor && cargo build --quiet --target wasm32-wasip1 --release)
floor=bench/floor/target/wasm32-wasip1/release/vrata_mirror_floor.wasm
# shellcheck disable=SC2086 # one name per word
python3 scripts/trim-exports.py "$floor" $unused
echo "floor module: $floor ($(stat -c %s "$floor") bytes)" >&2
exec bench/ab.sh target/wasm32-wasip1/release/vrata_mirror.wasm "$floor" wasm0 "$shape" "$rounds" "$seconds"
