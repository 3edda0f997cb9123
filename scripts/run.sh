#!/usr/bin/env bash
# `make run`: a local Envoy 1.40 with the filter (envoy/envoy.yaml), a primary
# upstream and a shadow that prints what it receives. Ctrl-C stops them all.
# `make run NATIVE=1` (NATIVE=1 here): the same with the native host, the
# dynamic module target/native/libvrata_mirror_native.so, in the bootstrap
# `vrata-mirror envoy --dynamic-module` renders from envoy/plugin.json into
# .run/envoy-native.yaml (2 workers: the filter once per worker).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

envoy=$(./scripts/ensure-envoy.sh)
cargo build --quiet --example upstream
upstream=target/debug/examples/upstream
logs=.run
mkdir -p "$logs"

for port in 10000 9901 8081 8082; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "error: 127.0.0.1:$port is already in use (another 'make run'?); stop it first." >&2
    exit 1
  fi
done

workers=2
if [ "${NATIVE:-0}" = 1 ]; then
  config=$logs/envoy-native.yaml
  module=target/native/libvrata_mirror_native.so
  target/cli/vrata-mirror envoy envoy/plugin.json --dynamic-module "$module" \
    --concurrency "$workers" --listen 127.0.0.1:10000 --admin 127.0.0.1:9901 \
    --cluster primary=127.0.0.1:8081 --cluster shadow=127.0.0.1:8082 \
    --comment "make run NATIVE=1: the native host, rendered by scripts/run.sh from envoy/plugin.json" >"$config"
  host="the native host ($module)"
  components=dynamic_modules:info
  metric='envoy_vrata_mirror_requests_total{route="api",destination="shadow"} 1'
  metric_note='  (the native host'"'"'s names; envoy/observability/prometheus-scrape.yaml has the
  Prometheus rule that gives them the wasm names the dashboard and alerts use)'
else
  config=envoy/envoy.yaml
  host="the wasm filter"
  components=wasm:info
  metric='vrata_mirror_requests_total{route="api",destination="shadow"} 1'
  metric_note=
fi

pids=()
stop() {
  local status=$?
  trap - INT TERM EXIT
  echo
  echo "stopping Envoy and the upstreams..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  exit "$status"
}
trap stop INT TERM EXIT

"$upstream" primary 8081 >"$logs/primary.log" 2>&1 &
pids+=($!)
"$upstream" shadow 8082 --log >"$logs/shadow.log" 2>&1 &
pids+=($!)
"$envoy" -c "$config" --disable-hot-restart --concurrency "$workers" \
  -l warning --component-log-level "$components" >"$logs/envoy.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fsS http://127.0.0.1:9901/ready 2>/dev/null | grep -q LIVE; then break; fi
  if ! kill -0 "${pids[2]}" 2>/dev/null; then
    echo "error: Envoy exited; its log ($logs/envoy.log):" >&2
    tail -n 30 "$logs/envoy.log" >&2
    exit 1
  fi
  sleep 0.1
done

cat <<MSG

vrata-mirror is running: Envoy on http://127.0.0.1:10000 mirrors every request
to the shadow with $host (config: $config).

  Send a request:
    curl -s 'http://127.0.0.1:10000/api/hello?x=1' -H 'authorization: secret' -d 'a body'

  Watch the copies arrive at the shadow (the /api route drops authorization
  and cookie from the copy and adds x-mirror-route: api; every copy carries
  the loop marker x-vrata-mirror: 1, "loopMarker" in envoy/plugin.json):
    tail -f $logs/shadow.log

  A request that carries the marker is a copy, and is not mirrored again:
    curl -s http://127.0.0.1:10000/api/hello -H 'x-vrata-mirror: 1'
  counted as
    vrata_mirror_skipped_total{route="api",destination="shadow",reason="loop"} 1

  The metrics (admin on 127.0.0.1:9901):
    curl -s http://127.0.0.1:9901/stats/prometheus | grep vrata_mirror
  after one request to /api/hello you should see
    $metric
$metric_note

  What was mirrored, per route and destination (copies sent and skipped,
  the shadow's answers and error share, its p50/p99 latency):
    target/cli/vrata-mirror report --admin http://127.0.0.1:9901
    target/cli/vrata-mirror report --admin http://127.0.0.1:9901 --watch 5

  Logs: $logs/envoy.log, $logs/primary.log, $logs/shadow.log
  Ctrl-C stops Envoy and both upstreams.
MSG

wait -n "${pids[@]}" || true
echo "a process exited on its own; see the logs in $logs/" >&2
