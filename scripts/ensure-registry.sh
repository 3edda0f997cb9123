#!/usr/bin/env bash
# Installs what the image tests (crates/cli/tests/cli/registry.rs, compose.rs)
# need, if missing: Debian's docker-registry (distribution 2.8, the registry),
# skopeo (pushes the OCI layouts of `make image` and pulls them back) and
# docker-compose (validates envoy/docker-compose.yaml; no engine runs here),
# all with apt-get; and PyPI's oras (pinned, the ORAS Python client, which pulls
# the manifest and layers back as a second client) into its own virtualenv,
# .venv-oras/. Prints the path of that virtualenv's python. Only the
# binaries are used: the package's own registry service is not started
# (the tests start one on 127.0.0.1 with their own configuration).
set -euo pipefail
ORAS_VERSION=0.2.43
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-oras"
python="$venv/bin/python"

debian_found() {
  command -v docker-registry >/dev/null 2>&1 && command -v skopeo >/dev/null 2>&1 &&
    command -v docker-compose >/dev/null 2>&1
}

if ! debian_found; then
  "$(dirname "$0")/apt-install.sh" docker-registry skopeo docker-compose
fi
if ! debian_found; then
  echo "error: docker-registry, skopeo and docker-compose are installed, but not all on PATH" >&2
  exit 1
fi

oras_installed() {
  [ -x "$python" ] && [ "$("$python" -c 'import importlib.metadata as m; print(m.version("oras"))' 2>/dev/null)" = "$ORAS_VERSION" ]
}
if ! oras_installed; then
  echo "installing oras==$ORAS_VERSION into $venv ..." >&2
  [ -x "$python" ] || python3 -m venv "$venv" >&2
  "$python" -m pip install --quiet --disable-pip-version-check "oras==$ORAS_VERSION" >&2
fi
if ! oras_installed; then
  echo "error: oras==$ORAS_VERSION installed, but $python does not report it" >&2
  exit 1
fi
echo "$python"
