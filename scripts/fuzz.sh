#!/usr/bin/env bash
# Coverage-guided fuzzing with cargo-fuzz (libFuzzer) of the places untrusted input enters:
# the replay record decoder, the Kafka message decoder, the flow-file parser, the action
# templates and the engine fed arbitrary record streams (targets in fuzz/fuzz_targets/).
#
# Usage: scripts/fuzz.sh [--quick] [--seconds N] [TARGET...]
#   --quick      25 s per target (what scripts/test.sh and CI run)
#   --seconds N  N seconds per target (default 300)
#   TARGET...    some targets only (default: all of them)
#
# The toolchain here is stable: cargo-fuzz's nightly flags are accepted with RUSTC_BOOTSTRAP=1.
# Needs `cargo install cargo-fuzz --locked` (.ci/run does it). The committed seeds are
# fuzz/corpus/TARGET and are only read; what the fuzzer finds goes to fuzz/work/TARGET (not
# committed; merge a find worth keeping with `cargo fuzz cmin`, see docs/testing.md). A crash
# is written to fuzz/artifacts/TARGET/ and fails the run: reproduce it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET fuzz/artifacts/TARGET/crash-...` (from fuzz/),
# fix it and keep the input as a regression test in tests/it/fuzz_regressions.rs.
# The fuzz build lives in ~/.cache/flowwatch/fuzz-target (FLOWWATCH_FUZZ_TARGET_DIR), so a
# fresh clone reuses the instrumented dependencies.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=300
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) seconds=25 ;;
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(decode_line kafka_message flow_file template engine_stream)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
  exit 1
fi

export RUSTC_BOOTSTRAP=1
target_dir=${FLOWWATCH_FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flowwatch/fuzz-target}
mkdir -p "$target_dir" work
# Longest input per target: a line, a message, a flow file, a template, a record stream.
max_len() {
  case "$1" in
    flow_file) echo 8192 ;;
    engine_stream) echo 65536 ;;
    *) echo 4096 ;;
  esac
}

echo "==> building the fuzz targets (optimised, with debug assertions, overflow checks and the address sanitizer)"
# One cargo invocation builds every target; the first build also instruments the dependencies
# (librdkafka's C code is built as usual, without coverage).
if ! timeout 3600 cargo fuzz build --target-dir "$target_dir" >work/build.log 2>&1; then
  tail -40 work/build.log
  echo "fuzzing: the fuzz targets do not build (work/build.log)" >&2
  exit 1
fi

crashed=()
for target in "${targets[@]}"; do
  mkdir -p "work/$target"
  log="work/$target.log"
  echo "==> $target for ${seconds}s"
  status=0
  # -timeout: one input taking 10 s counts as a hang; -rss_limit_mb bounds memory.
  timeout $((seconds + 300)) cargo fuzz run --target-dir "$target_dir" "$target" \
    "work/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -max_len="$(max_len "$target")" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
  corpus=$(find "work/$target" "corpus/$target" -type f | wc -l)
  if [ "$status" -ne 0 ]; then
    crashed+=("$target")
    echo "    CRASH (exit $status): $runs runs; last lines of $log:"
    tail -30 "$log" | sed 's/^/    /'
    ls "artifacts/$target" 2>/dev/null | sed 's/^/    artifact: /' || true
  else
    echo "    ok: $runs runs in ${seconds}s, coverage $cov edges, corpus $corpus inputs"
  fi
done

echo
if [ "${#crashed[@]}" -gt 0 ]; then
  echo "fuzzing: ${#targets[@]} target(s) run, ${#crashed[@]} crashed: ${crashed[*]}"
  exit 1
fi
echo "fuzzing: ${#targets[@]} target(s) run, none crashed"
