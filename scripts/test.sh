#!/usr/bin/env bash
# The whole test suite, as the README says: build, unit and integration tests, clippy, the
# shipped flows through `validate`, the conformance scenarios (when ../shared is beside the
# checkout, as in CI), the benchmarks in quick mode so they never rot, a short fuzzing run
# (scripts/fuzz.sh --quick), the end-to-end tests against a real broker with the kill -9 loop
# against it (E2E_TANSU_TORTURE=1 scripts/e2e-tansu.sh), the kill -9 torture of the daemon on
# the mock cluster (scripts/torture.sh) and the page in a browser
# (scripts/browser-test.sh).
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "build (release)"
cargo build --release --locked

step "cargo test"
cargo test --release --locked --lib --bins --tests 2>&1 | tee target/cargo-test.log
grep -q "test result: ok" target/cargo-test.log

step "clippy"
cargo clippy --release --locked --all-targets -- -D warnings
# The torture binary is `test = false` (scripts/torture.sh runs it), so --all-targets skips it.
cargo clippy --release --locked --test torture -- -D warnings

step "validate the shipped flows"
target/release/flowwatch validate flows/

if [ -x ../shared/scenarios/check ]; then
  step "conformance scenarios (../shared/scenarios)"
  ../shared/scenarios/check target/release/flowwatch
else
  step "conformance scenarios: ../shared/scenarios not present beside this checkout, skipped"
fi

step "benchmarks, quick mode"
bench/replay --quick
bench/store --quick
bench/live --quick
# A given stream (the held-out form): the same benchmarks over an example stream and the shipped flows.
bench/live --quick --stream tests/examples/checkout-day.jsonl --flows flows
bench/replay --quick --stream tests/examples/checkout-day.jsonl --flows flows
bench/scale --quick

step "fuzzing, quick mode (25 s per target; scripts/fuzz.sh for longer runs)"
scripts/fuzz.sh --quick

step "end-to-end against a real broker (tansu), and the kill -9 loop against it"
E2E_TANSU_TORTURE=1 scripts/e2e-tansu.sh 2>&1 | tee target/e2e-test.log

step "kill -9 torture of the daemon, redb and sled (mock cluster)"
scripts/torture.sh 2>&1 | tee target/torture-test.log

step "the web page in headless Chromium"
FLOWWATCH_BIN=target/release/flowwatch scripts/browser-test.sh

step "the real Prometheus server scrapes a running flowwatch demo"
FLOWWATCH_BIN=target/release/flowwatch scripts/prometheus-demo.sh

echo
echo "all tests passed"
# One plain closing line with the totals of every cargo test binary (e2e and torture included).
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "%d passed, %d failed\n", passed, failed }' \
  target/cargo-test.log target/e2e-test.log target/torture-test.log
