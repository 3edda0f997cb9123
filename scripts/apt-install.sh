#!/usr/bin/env bash
# Installs Debian packages with apt-get, as root or through sudo, quietly:
#   scripts/apt-install.sh PACKAGE...
# The ensure-*.sh scripts call it when a tool they need is missing. RUNLEVEL=1:
# a package's own service (nginx, prometheus, docker-registry) is not started;
# the project runs the binaries itself, with configs of its own.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PACKAGE..." >&2; exit 2; }
echo "installing $* (Debian packages, apt-get) ..." >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq >&2
$sudo env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "$@" >&2
