#!/usr/bin/env bash
# Installs the wasm32-wasip1 Rust target if this toolchain lacks it.
set -euo pipefail
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
  echo "installing the wasm32-wasip1 target (rustup)..." >&2
  rustup target add wasm32-wasip1 >&2
fi
