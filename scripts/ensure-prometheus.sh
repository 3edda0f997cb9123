#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's `prometheus` package (apt-get)
# if they are missing, and prints the directory that holds both. The
# observability tests (envoy/observability: `promtool test rules`, and a real
# Prometheus scraping a real Envoy) need them and never skip: without them
# they fail and say how to get them. Only the binaries are used: the
# package's own service is not started.
set -euo pipefail

found() {
  command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1
}

if ! found; then
  "$(dirname "$0")/apt-install.sh" prometheus
fi
if ! found; then
  echo "error: the prometheus package is installed, but prometheus and promtool are not on PATH" >&2
  exit 1
fi
dirname "$(command -v promtool)"
