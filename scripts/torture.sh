#!/usr/bin/env bash
# The kill -9 torture test of the daemon (tests/torture/main.rs), for both disk backends:
# builds the release binary and the test, then, for redb and then sled, kills a real
# `flowwatch run` with SIGKILL at random moments while it consumes a simulated stream of about
# 50,000 records from librdkafka's mock cluster, restarts it each time, and checks that the
# final signals, alerts, action records and dead letters equal a kill-free run's.
# Usage: scripts/torture.sh [SEED [KILLS]]      (from anywhere in the repository)
# Environment: TORTURE_SEED (default 20261202), TORTURE_KILLS (default 30; the arguments win),
# TORTURE_TIMEOUT (seconds for both backends together, default 1200).
set -euo pipefail
cd "$(dirname "$0")/.."

export TORTURE_SEED=${1:-${TORTURE_SEED:-20261202}}
export TORTURE_KILLS=${2:-${TORTURE_KILLS:-30}}
TORTURE_TIMEOUT=${TORTURE_TIMEOUT:-1200}

printf '\n==> build (release): flowwatch and the torture test\n'
cargo build --release --locked --bin flowwatch
cargo test --release --locked --test torture --no-run

printf '\n==> kill -9 torture: seed %s, %s kills per backend (redb, then sled)\n' "$TORTURE_SEED" "$TORTURE_KILLS"
# One backend at a time (--test-threads=1): each test runs its own daemon and mock cluster.
timeout "$TORTURE_TIMEOUT" \
  cargo test --release --locked --test torture -- --test-threads=1 --nocapture --skip tansu
