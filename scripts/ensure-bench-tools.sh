#!/usr/bin/env bash
# Installs the benchmark's load generator and upstreams, Debian's `wrk` and
# `nginx` (apt-get), if they are missing. `make bench` and bench/ab.sh need
# them; only the binaries are used (the package's own nginx service is not
# started: the bench runs its own nginx processes with generated configs).
set -euo pipefail

found() {
  command -v wrk >/dev/null 2>&1 && command -v nginx >/dev/null 2>&1
}

if ! found; then
  "$(dirname "$0")/apt-install.sh" wrk nginx
fi
if ! found; then
  echo "error: wrk and nginx are installed, but not on PATH" >&2
  exit 1
fi
