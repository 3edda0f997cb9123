#!/usr/bin/env bash
# Installs grpcio from PyPI (pinned) into the project's own virtualenv, .venv/,
# and prints the path of that virtualenv's python. tests/e2e/grpc.rs runs a
# grpc-core shadow (crates/testkit/grpcio_server.py) with it: grpc-core is the
# stack that cancels calls arriving without `te: trailers`.
set -euo pipefail
GRPCIO_VERSION=1.85.3
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
python="$venv/bin/python"

installed() {
  [ -x "$python" ] && [ "$("$python" -c 'import grpc; print(grpc.__version__)' 2>/dev/null)" = "$GRPCIO_VERSION" ]
}

if ! installed; then
  echo "installing grpcio==$GRPCIO_VERSION into $venv ..." >&2
  if [ ! -x "$python" ]; then
    python3 -m venv "$venv" >&2
  fi
  "$python" -m pip install --quiet --disable-pip-version-check "grpcio==$GRPCIO_VERSION" >&2
fi
if ! installed; then
  echo "error: grpcio==$GRPCIO_VERSION installed, but '$python -c \"import grpc\"' does not report it" >&2
  exit 1
fi
echo "$python"
