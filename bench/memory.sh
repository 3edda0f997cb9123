#!/usr/bin/env bash
# Envoy's memory with the filter, per worker (issue 13, part 4): RSS idle,
# after SECONDS of `wasm100` POSTs of 16 KiB, and after as many again (the
# steady growth), at 1 and at 2 workers, next to the same without the filter
# (`none`). The difference between 2 workers and 1 is what one more worker
# costs; the filter's share is that difference with wasm100 minus the same
# with none. The module's own heap per VM is the harness figure
# (tests/harness/memory.rs); the rest of the filter's share is V8's.
#
#   bench/memory.sh [seconds=60]
#
# Envoy's workers on core 0, wrk and nginx on core 1 (as bench/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
envoy=$(./scripts/ensure-envoy.sh)
envoy_cpu=0
client_cpu=1
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_start memory
[ -f target/wasm32-wasip1/release/vrata_mirror.wasm ] || die "run 'make build' first"
wasm=$tmp/vrata_mirror.wasm
cp target/wasm32-wasip1/release/vrata_mirror.wasm "$wasm"

read -r listen admin primary shadow dead stuck < <(free_ports 6)
start_nginx_upstreams

phase() {  # label...: one loaded phase, one JSON line to results.jsonl
  python3 bench/phase.py --envoy-pid "$envoy_pid" --admin "$admin" --envoy-log "$envoy_log" \
    --url "http://127.0.0.1:$listen/api/bench" --script bench/wrk/post16k.lua --warmup 0 \
    --seconds "$seconds" --connections 32 --client-cpu "$client_cpu" --settle 3 "$@" >>"$tmp/results.jsonl"
}

for envoy_workers in 1 2; do
  for c in none wasm100; do
    log "$c, $envoy_workers worker(s): idle, then 2 x ${seconds}s of POST 16 KiB"
    start_envoy "$c" "$primary" "$shadow" "$c-$envoy_workers" "$wasm"
    sleep 2
    phase --label case="$c" --label workers="$envoy_workers" --label phase=first
    phase --label case="$c" --label workers="$envoy_workers" --label phase=second
    stop_envoy
  done
done

python3 - "$tmp/results.jsonl" "$seconds" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
seconds = sys.argv[2]
at = {(r["case"], r["workers"], r["phase"]): r for r in rows}
print(f"| config | workers | RSS idle MB | after {seconds} s MB | after {2 * int(seconds)} s MB "
      f"| growth over the second {seconds} s MB | req/s | copies sent | non-2xx | socket errors |")
print("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
bad = 0
for workers in ("1", "2"):
    for case in ("none", "wasm100"):
        first, second = at[(case, workers, "first")], at[(case, workers, "second")]
        errors = first["non2xx"] + second["non2xx"] + first["socket_errors"] + second["socket_errors"]
        bad += errors
        sent = first["stats"].get("vrata_mirror_requests_total", 0) + second["stats"].get("vrata_mirror_requests_total", 0)
        print(f"| {case} | {workers} | {first['rss_before_mb']:.1f} | {first['rss_after_mb']:.1f} "
              f"| {second['rss_after_mb']:.1f} | {second['rss_after_mb'] - first['rss_after_mb']:+.1f} "
              f"| {(first['rps'] + second['rps']) / 2:,.0f} | {sent if case != 'none' else 'n/a'} "
              f"| {first['non2xx'] + second['non2xx']} | {first['socket_errors'] + second['socket_errors']} |")
def worker_cost(case, key):
    return at[(case, "2", "first")][key] - at[(case, "1", "first")][key]
for key, name in (("rss_before_mb", "idle"), ("rss_after_mb", f"after {seconds} s of load")):
    w, n = worker_cost("wasm100", key), worker_cost("none", key)
    print(f"\nOne more worker, {name}: {w:+.1f} MB with the filter, {n:+.1f} MB without: "
          f"the filter's share per worker {w - n:+.1f} MB.", end="")
print()
sys.exit(1 if bad else 0)
PY
