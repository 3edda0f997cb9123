#!/usr/bin/env bash
# The benchmark: our wasm filter against Envoy's native request mirroring, in
# one run, side by side (see bench/README.md). `make bench` builds the module,
# installs Envoy and runs this.
#
# Environment (all optional):
#   BENCH_SECONDS=8        measured seconds per case run
#   BENCH_WARMUP=2         warm-up seconds before each measured phase
#   BENCH_ROUNDS=3         rounds; each runs every case once, medians are reported
#   BENCH_CONNECTIONS=32   wrk connections (one wrk thread)
#   BENCH_CASES=...        comma-separated subset of the cases (default: all)
#   BENCH_SHAPES=get,post  request shapes (post: 16 KiB body)
#   BENCH_MEM_SECONDS=8    seconds per phase of the 16 MiB memory check (0: skip it)
#   BENCH_QUIET_WAIT=30    seconds to wait, before each phase, for other processes
#                          to go below BENCH_NOISE_PCT of a core (0: don't wait)
#   BENCH_NOISE_PCT=10     a case run during which other processes used more than
#                          this % of a core is repeated ...
#   BENCH_RETRIES=2        ... at most this many times (then kept, marked noisy)
#   BENCH_RESULTS=latest   the report goes to bench/results/$BENCH_RESULTS.md (and .jsonl)
# Quick smoke run: BENCH_SECONDS=2 BENCH_ROUNDS=1 make bench
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bench=bench

ALL_CASES=none,native100,native10,floor0,wasm0,wasm10,floor100,wasm100,wasmrate,nativedead,wasmdead,nativeslow,wasmslow,dyn0,dyn100,dyndead,wasmcompare,wasmsecondary
case_seconds=${BENCH_SECONDS:-8}
warmup=${BENCH_WARMUP:-2}
rounds=${BENCH_ROUNDS:-3}
connections=${BENCH_CONNECTIONS:-32}
cases=${BENCH_CASES:-$ALL_CASES}
shapes=${BENCH_SHAPES:-get,post}
mem_seconds=${BENCH_MEM_SECONDS:-8}
quiet_wait=${BENCH_QUIET_WAIT:-30}
noise_pct=${BENCH_NOISE_PCT:-10}
retries=${BENCH_RETRIES:-2}
results_name=${BENCH_RESULTS:-latest}
envoy_cpu=0    # Envoy's one worker (and its main thread) on this core
client_cpu=1   # wrk, nginx, the stuck shadow and the upload sink on this one
wasm_built=target/wasm32-wasip1/release/vrata_mirror.wasm
# The native host (the dynamic module; cases dyn0, dyn100, dyndead).
native_built=target/native/libvrata_mirror_native.so
compare_built=target/wasm32-wasip1/release/vrata_mirror_compare.wasm

# shellcheck source=bench/lib.sh
. bench/lib.sh

for c in ${cases//,/ }; do
  [[ ",$ALL_CASES," == *",$c,"* ]] || die "unknown case '$c' in BENCH_CASES (known: $ALL_CASES)"
done
for s in ${shapes//,/ }; do
  [[ $s == get || $s == post ]] || die "unknown shape '$s' in BENCH_SHAPES (known: get,post)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 cores (Envoy on core $envoy_cpu, the load on core $client_cpu); this machine has $(nproc)"

# --- tools -------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v taskset >/dev/null || missing+=(util-linux)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
envoy=$(./scripts/ensure-envoy.sh)
[ -f "$wasm_built" ] || die "$wasm_built is missing: run 'make build' (make bench does)"
[ -f "$native_built" ] || die "$native_built is missing: run 'make build' (make bench does)"
[ -f "$compare_built" ] || die "$compare_built is missing: run 'make build' (make bench does)"

# --- scratch dir, processes, cleanup -------------------------------------------
bench_start bench
results=$tmp/results.jsonl
: >"$results"

# The module as it is now: other builds may replace the file during the run.
wasm=$tmp/vrata_mirror.wasm
cp "$wasm_built" "$wasm"
native_module=$tmp/libvrata_mirror_native.so
cp "$native_built" "$native_module"
# The comparison module, for wasmcompare and wasmsecondary (module_for_case).
compare_wasm=$tmp/vrata_mirror_compare.wasm
cp "$compare_built" "$compare_wasm"
build_floors "$tmp"

read -r listen admin primary shadow shadow_status stuck sink dead < <(free_ports 8)

nginx_config "$tmp" primary "$primary" >"$tmp/nginx-primary.conf"
nginx_config "$tmp" shadow "$shadow" "$shadow_status" >"$tmp/nginx-shadow.conf"
start_bg nginx-primary "$nginx_bin" -p "$tmp" -c "$tmp/nginx-primary.conf"
primary_pid=$bg_pid
start_bg nginx-shadow "$nginx_bin" -p "$tmp" -c "$tmp/nginx-shadow.conf"
shadow_pid=$bg_pid
start_bg stuck-shadow python3 $bench/stuck_server.py "$stuck"
stuck_pid=$bg_pid
start_bg upload-sink python3 $bench/upload_sink.py "$sink"
sink_pid=$bg_pid
wait_port "$primary" "$primary_pid" nginx-primary
wait_port "$shadow" "$shadow_pid" nginx-shadow
wait_port "$stuck" "$stuck_pid" stuck-shadow
wait_port "$sink" "$sink_pid" upload-sink
ours="$primary_pid,$shadow_pid,$stuck_pid,$sink_pid"

phase() {  # phase.py with the common arguments, one JSON line appended to $results
  python3 $bench/phase.py --envoy-pid "$envoy_pid" --admin "$admin" --envoy-log "$envoy_log" \
    --url "http://127.0.0.1:$listen/api/bench" --connections "$connections" \
    --client-cpu "$client_cpu" --ours "$ours" --shadow-status "$shadow_status" \
    --quiet-wait "$quiet_wait" --quiet-threshold "$noise_pct" "$@"
}

noisy() {  # phase-output.json: true if other processes used more than noise_pct of a core
  python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1]))["others_cpu_pct"] <= float(sys.argv[2]))' \
    "$1" "$noise_pct"
}

run_case() {  # case shape round script: a fresh Envoy, one measured phase, repeated if noisy
  local attempt
  for attempt in $(seq 1 $((retries + 1))); do
    start_envoy "$1" "$primary" "$(shadow_port_for "$1")" "$1-$2-$3-$attempt" "$(module_for_case "$1" "$wasm")"
    phase --label kind=case --label case="$1" --label shape="$2" --label round="$3" \
      --label attempt="$attempt" --script "$4" --warmup "$warmup" --seconds "$case_seconds" \
      >"$tmp/phase.json"
    stop_envoy
    if [ "$attempt" -gt "$retries" ] || ! noisy "$tmp/phase.json"; then break; fi
    log "  other processes were busy during that run; repeating it"
  done
  cat "$tmp/phase.json" >>"$results"
  client_errors "$tmp/phase.json"
}

client_errors() {  # phase-output.json: says at once if wrk saw errors (the report then fails the run)
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
if r["non2xx"] or r["socket_errors"]:
    print("bench:   ERROR:", r["non2xx"], "non-2xx responses, socket errors",
          r["socket_error_detail"], file=sys.stderr)' "$1"
}

# --- the cases ----------------------------------------------------------------
ncases=$(tr ',' '\n' <<<"$cases" | wc -l)
nshapes=$(tr ',' '\n' <<<"$shapes" | wc -l)
log "Envoy $("$envoy" --version | grep -o '/1\.[0-9.]*/' | tr -d /), module $(stat -c %s "$wasm") bytes"
log "$rounds round(s) x $ncases case(s) x $nshapes shape(s), ${case_seconds}s each (+${warmup}s warm-up), wrk -t1 -c$connections"
log "ports: listener $listen, admin $admin, primary $primary, shadow $shadow, stuck $stuck, dead $dead; scratch $tmp"
started=$(date +%s)
for round in $(seq 1 "$rounds"); do
  for shape in ${shapes//,/ }; do
    script=$bench/wrk/get.lua
    [ "$shape" = post ] && script=$bench/wrk/post16k.lua
    for c in ${cases//,/ }; do
      if [[ $c == *dead ]] && (exec 3<>"/dev/tcp/127.0.0.1/$dead") 2>/dev/null; then
        die "the 'dead' port $dead is now in use by another process"
      fi
      log "round $round/$rounds: $c $shape"
      run_case "$c" "$shape" "$round" "$script"
    done
  done
done

# --- memory check: 16 MiB uploads, over the filter's 1 MiB body cap -------------
# The primary is upload_sink.py (it reads every body before answering). Two
# phases per Envoy: the first after a 16 KiB warm-up (Envoy's own buffers grow
# here), the second right after it (steady state).
if [ "$mem_seconds" -gt 0 ]; then
  for round in $(seq 1 "$rounds"); do
    for c in none wasm100; do
      log "memory check, round $round/$rounds: $c, 16 MiB POSTs"
      start_envoy "$c" "$sink" "$shadow" "mem-$c-$round" "$wasm"
      phase --label kind=mem --label case="$c" --label phase=first --label round="$round" \
        --warmup-script $bench/wrk/post16k.lua --warmup "$warmup" \
        --script $bench/wrk/post16m.lua --seconds "$mem_seconds" --settle 3 >>"$results"
      phase --label kind=mem --label case="$c" --label phase=steady --label round="$round" \
        --warmup 0 --script $bench/wrk/post16m.lua --seconds "$mem_seconds" --settle 3 \
        --quiet-wait 0 >>"$results"
      stop_envoy
    done
  done
fi

# --- report --------------------------------------------------------------------
mkdir -p $bench/results
status=0
python3 $bench/report.py "$results" --wasm "$wasm" --envoy "$envoy" \
  --wall-seconds $(( $(date +%s) - started )) --noisy-pct "$noise_pct" \
  --settings "BENCH_SECONDS=$case_seconds BENCH_WARMUP=$warmup BENCH_ROUNDS=$rounds BENCH_CONNECTIONS=$connections BENCH_CASES=$cases BENCH_SHAPES=$shapes BENCH_MEM_SECONDS=$mem_seconds BENCH_NOISE_PCT=$noise_pct BENCH_RETRIES=$retries" \
  >"$tmp/latest.md" || status=$?
cp "$tmp/latest.md" "$bench/results/$results_name.md"
cat "$tmp/latest.md"
cp "$results" "$bench/results/$results_name.jsonl"
if [ "$status" -ne 0 ]; then
  echo >&2
  die "some cases had errors (see ERRORS above); raw results in $bench/results/$results_name.jsonl"
fi
log "written to $bench/results/$results_name.md"
