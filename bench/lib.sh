# The processes of a bench run, shared by bench/run.sh and bench/ab.sh.
# Sourced, not run. The sourcing script sets:
#   envoy        the Envoy binary (scripts/ensure-envoy.sh)
#   envoy_cpu    the core Envoy is pinned to
#   client_cpu   the core of the load generator and the upstreams
#   listen admin shadow dead stuck   ports (see free_ports)
# and calls bench_start (scratch directory, cleanup on exit) first.

die() { echo "bench: error: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# A scratch directory in $tmp (logs in $tmp/logs), and every process started
# through start_bg or start_envoy stopped on exit, Ctrl-C or failure. The
# directory is removed after a success and kept, with its logs, otherwise.
bench_start() {  # name
  tmp=$(mktemp -d "/tmp/vrata-$1.XXXXXX")
  mkdir -p "$tmp/logs"
  pids=()
  envoy_pid=""
  trap stop_all EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

stop_all() {
  local status=$?
  set +e
  trap - INT TERM EXIT
  if [ -n "$envoy_pid" ]; then kill "$envoy_pid" 2>/dev/null; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  wait 2>/dev/null
  if [ "$status" -eq 0 ]; then
    rm -rf "$tmp"
  else
    log "failed (exit $status); logs and configs kept in $tmp"
  fi
  exit "$status"
}

# N free loopback ports below the ephemeral range (where tests pick theirs).
free_ports() {  # count
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ports = []
while len(ports) < int(sys.argv[1]):
    port = random.randrange(15000, min(low, 30000))
    if port in ports:
        continue
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    ports.append(port)
print(*ports)
PY
}

start_bg() {  # name cmd... : pinned to the client core, logs in $tmp/logs/name.log
  local name=$1; shift
  taskset -c "$client_cpu" "$@" >"$tmp/logs/$name.log" 2>&1 &
  pids+=($!)
  bg_pid=$!
}

wait_port() {  # port pid name
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || die "$3 exited at start; see $tmp/logs/$3.log"
    sleep 0.05
  done
  die "$3 does not listen on 127.0.0.1:$1"
}

# The shadow a case talks to: *dead a closed port, *slow one that never answers.
shadow_port_for() {  # case
  case $1 in
    *dead) echo "$dead" ;;
    *slow) echo "$stuck" ;;
    *) echo "$shadow" ;;
  esac
}

# A fresh Envoy (one worker, pinned) with the case's config; returns when it
# is ready. Sets envoy_pid and envoy_log.
start_envoy() {  # case primary-port shadow-port log-name module
  local config=$tmp/envoy-$4.json
  python3 bench/render_config.py envoy "$1" --listen "$listen" --admin "$admin" \
    --primary "$2" --shadow "$3" --wasm "$5" >"$config"
  envoy_log=$tmp/logs/envoy-$4.log
  taskset -c "$envoy_cpu" "$envoy" -c "$config" --concurrency 1 --disable-hot-restart \
    -l warning --log-path "$envoy_log" >>"$envoy_log.out" 2>&1 &
  envoy_pid=$!
  for _ in $(seq 1 200); do
    if curl -fsS "http://127.0.0.1:$admin/ready" 2>/dev/null | grep -q LIVE; then return 0; fi
    kill -0 "$envoy_pid" 2>/dev/null || { cat "$envoy_log" "$envoy_log.out" >&2; die "Envoy exited at start ($1)"; }
    sleep 0.05
  done
  die "Envoy not ready after 10 s ($1); see $envoy_log"
}

stop_envoy() {
  kill "$envoy_pid" 2>/dev/null || true
  wait "$envoy_pid" 2>/dev/null || true
  envoy_pid=""
}
