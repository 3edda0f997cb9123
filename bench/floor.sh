#!/usr/bin/env bash
# Our module against a floor (bench/floor), paired run for run (bench/ab.sh):
#
#   bench/floor.sh [shape=get|post] [rounds=8] [seconds=5] [floor=0|100]
#
# floor 0: the `wasm0` config, A our module at percentage 0, B an HTTP
#   filter that does nothing: the paired CPU difference B-A is minus what
#   our filter costs per request when it mirrors nothing.
# floor 100: A the floor mirror (`floor100`: only what every proxy-wasm
#   mirror must do), B our module at 100 % (`wasm100`): B/A is
#   `wasm100 ÷ floor100`, B-A our own CPU per mirrored request.
set -euo pipefail
cd "$(dirname "$0")/.."
shape=${1:-get}; rounds=${2:-8}; seconds=${3:-5}; floor=${4:-0}
make --no-print-directory build >&2
# shellcheck source=bench/lib.sh
. bench/lib.sh
build_floors bench/floor/target/trimmed
ours=target/wasm32-wasip1/release/vrata_mirror.wasm
case $floor in
  0)
    echo "floor module: $floor0_wasm ($(stat -c %s "$floor0_wasm") bytes)" >&2
    exec bench/ab.sh "$ours" "$floor0_wasm" wasm0 "$shape" "$rounds" "$seconds" ;;
  100)
    echo "floor module: $floor100_wasm ($(stat -c %s "$floor100_wasm") bytes)" >&2
    AB_CASE_A=floor100 AB_CASE_B=wasm100 exec bench/ab.sh "$floor100_wasm" "$ours" - "$shape" "$rounds" "$seconds" ;;
  *) die "floor is 0 or 100, not '$floor'" ;;
esac
