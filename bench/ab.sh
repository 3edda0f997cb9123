#!/usr/bin/env bash
# A/B: two builds of the module in the same bench case, interleaved over
# rounds (A, B, A, B, ...), each run a fresh Envoy; prints the median req/s
# and Envoy CPU per request of each. This is how an optimisation's gain is
# measured before it is committed (the machine drifts: only side-by-side
# ratios mean anything).
#
#   bench/ab.sh A.wasm B.wasm [case=wasm100] [shape=get|post] [rounds=6] [seconds=5]
#
# AB_CASE_A / AB_CASE_B give each side its own case instead, e.g. to pair
# native and wasm mirroring run for run:
#   AB_CASE_A=native100 AB_CASE_B=wasm100 bench/ab.sh M.wasm M.wasm - get 10 5
#
# Same setup as bench/run.sh: Envoy (one worker) on core 0, wrk and nginx on core 1.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-bench-tools.sh
[ $# -ge 2 ] || { sed -n 2,10p "$0"; exit 2; }
a=$(realpath "$1"); b=$(realpath "$2")
case_name=${3:-wasm100}; shape=${4:-get}; rounds=${5:-6}; seconds=${6:-5}
[ "$case_name" = - ] && case_name=wasm100
case_a=${AB_CASE_A:-$case_name}; case_b=${AB_CASE_B:-$case_name}
script=bench/wrk/get.lua; [ "$shape" = post ] && script=bench/wrk/post16k.lua
envoy=$(./scripts/ensure-envoy.sh)
envoy_cpu=0
client_cpu=1
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_start ab

read -r listen admin primary shadow dead stuck < <(free_ports 6)
start_nginx_upstreams
start_bg stuck-shadow python3 bench/stuck_server.py "$stuck"
wait_port "$stuck" "$bg_pid" stuck-shadow

run() {  # label module case
  start_envoy "$3" "$primary" "$(shadow_port_for "$3")" "$1-$r" "$2"
  python3 bench/phase.py --label variant="$1" --envoy-pid "$envoy_pid" --admin "$admin" \
    --url "http://127.0.0.1:$listen/api/bench" --script "$script" --warmup 2 --seconds "$seconds" \
    --connections 32 --client-cpu "$client_cpu" --quiet-wait 10 >>"$tmp/results.jsonl"
  stop_envoy
}

for r in $(seq 1 "$rounds"); do
  run A "$a" "$case_a"
  run B "$b" "$case_b"
  echo "round $r/$rounds done" >&2
done

python3 - "$tmp/results.jsonl" "$case_a vs $case_b" "$shape" "$a" "$b" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
med = {}
for v in ("A", "B"):
    mine = [r for r in rows if r["variant"] == v]
    med[v] = (statistics.median(r["rps"] for r in mine), statistics.median(r["envoy_cpu_us_per_req"] for r in mine))
    print(f"{v}: {sys.argv[4 if v == 'A' else 5]}")
    print(f"   req/s per round: {[round(r['rps']) for r in mine]}")
    print(f"   CPU us/req per round: {[round(r['envoy_cpu_us_per_req'], 1) for r in mine]}")
# Paired: each B run against the A run just before it, so slow drift of the
# machine cancels out; the median of those pairs is the figure to quote.
pairs = list(zip([r for r in rows if r["variant"] == "A"], [r for r in rows if r["variant"] == "B"]))
ratio = statistics.median(b["rps"] / a["rps"] for a, b in pairs)
delta = statistics.median(b["envoy_cpu_us_per_req"] - a["envoy_cpu_us_per_req"] for a, b in pairs)
print(f"{sys.argv[2]} {sys.argv[3]}: median req/s A {med['A'][0]:.0f}, B {med['B'][0]:.0f}; "
      f"CPU us/req A {med['A'][1]:.1f}, B {med['B'][1]:.1f}; "
      f"paired medians: req/s B/A {ratio:.3f}, CPU B-A {delta:+.1f} us/req "
      f"(B better in {sum(b['envoy_cpu_us_per_req'] < a['envoy_cpu_us_per_req'] for a, b in pairs)}/{len(pairs)} pairs)")
PY
