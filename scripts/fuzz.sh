#!/usr/bin/env bash
# Runs each cargo-fuzz target in fuzz/ for a bounded time and prints, per
# target, how long it ran, how many inputs it executed and what it found.
#
#   FUZZ_SECONDS=60      seconds per target (default 60)
#   FUZZ_TARGETS="..."   which targets (default: all in fuzz/Cargo.toml)
#   FUZZ_KEEP_GOING=1    do not stop at the first failing input: fuzz for
#                        the whole time in libFuzzer's fork mode, saving each
#                        failing input found (one known bug then does not
#                        hide the others)
#
# Exits non-zero if any target found a failing input; the input is saved
# under fuzz/artifacts/<target>/ and the command to replay it is printed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' "$root/fuzz/Cargo.toml" | grep -v '^vrata-mirror-fuzz$')}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io..." >&2
  cargo install --locked cargo-fuzz >&2
fi

# cargo-fuzz builds with -Z flags (sanitizer, coverage instrumentation) that
# only nightly accepts; RUSTC_BOOTSTRAP=1 lets the stable toolchain take them,
# so no nightly toolchain is needed.
export RUSTC_BOOTSTRAP=1

cd "$root/fuzz"
mkdir -p target/fuzz-logs
echo "building fuzz targets..." >&2
cargo fuzz build >&2

# The failure an input causes: its panic message (or sanitizer report),
# replayed, so fork mode (which keeps no child output) explains it too.
why() {
  local report
  report=$(cargo fuzz run "$1" "$2" 2>&1 || true)
  grep -m1 -A1 -E 'panicked at|ERROR: AddressSanitizer' <<<"$report" | tail -n 1 | cut -c1-300 || true
}

failed=0
summaries=()
for target in $targets; do
  corpus="corpus/$target"
  artifacts="artifacts/$target"
  log="target/fuzz-logs/$target.log"
  mkdir -p "$corpus" "$artifacts"
  flags=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/")
  if [ -f "dictionaries/$target.dict" ]; then
    flags+=(-dict="dictionaries/$target.dict")
  fi
  if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
    flags+=(-fork=1 -ignore_crashes=1)
  fi
  echo "fuzzing $target for ${seconds}s (log: fuzz/$log)..." >&2
  before=$(ls "$artifacts" | wc -l)
  started=$(date +%s)
  set +e
  cargo fuzz run "$target" "$corpus" "seeds/$target" -- "${flags[@]}" >"$log" 2>&1
  status=$?
  set -e
  elapsed=$(( $(date +%s) - started ))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  if [ -z "$execs" ]; then
    # Fork mode prints no final stats: take its last progress line.
    execs=$(sed -n 's/^#\([0-9][0-9]*\):* .*/\1/p' "$log" | tail -n 1)
    rate=$(( ${execs:-0} / (elapsed > 0 ? elapsed : 1) ))
  fi
  size=$(ls "$corpus" | wc -l)
  found=$(( $(ls "$artifacts" | wc -l) - before ))
  if [ "$found" -eq 0 ] && [ "$status" -ne 0 ]; then
    failed=1
    summaries+=("$target: the fuzzer exited with status $status and saved no input: see fuzz/$log")
  elif [ "$found" -gt 0 ]; then
    failed=1
    summaries+=("$target: FOUND $found failing input(s) in ${elapsed}s, ${execs:-?} execs (${rate:-?}/s)")
    for artifact in $(ls -t "$artifacts" | head -n "$found" | head -n 5); do
      summaries+=("  fuzz/$artifacts/$artifact: $(why "$target" "$artifacts/$artifact")")
    done
    summaries+=("  replay one: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $target $artifacts/<file>)")
  else
    summaries+=("$target: ${elapsed}s, ${execs:-?} execs (${rate:-?}/s), corpus ${size} inputs, nothing found")
  fi
done

echo
printf '%s\n' "${summaries[@]}"
exit "$failed"
