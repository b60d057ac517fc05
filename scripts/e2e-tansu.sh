#!/usr/bin/env bash
# End-to-end tests against a real Kafka-compatible broker process (tansu 0.6, built with the
# `dynostore` and `libsql` features): installs tansu when missing or built without `libsql`
# (cached build), starts it on a free port of 127.0.0.1 with in-memory storage, waits until it
# accepts connections, and runs the `e2e` test binary (tests/e2e/) with FLOWWATCH_E2E_BROKERS
# set (the live = replay test) and FLOWWATCH_E2E_TANSU set (the broker-restart test and the
# TLS + SASL test start their own tansu on SQLite storage), then, with E2E_TANSU_TORTURE=1, the
# kill -9 loop of the daemon
# against its own tansu (`torture` binary, test `kill_minus_nine_tansu`). Stops the broker on
# exit. Bounded in time.
# Usage: scripts/e2e-tansu.sh [extra cargo test args]     (from anywhere in the repository)
# Environment: TANSU (a tansu binary built with libsql; default: tansu on PATH or
# ~/.cargo/bin/tansu), FLOWWATCH_TANSU_CACHE (build cache, default
# ~/.cache/flowwatch/tansu-libsql/target), E2E_TIMEOUT (seconds for each test run, default 900),
# E2E_TANSU_TORTURE=1 (also run the kill -9 loop against tansu; TORTURE_TANSU_KILLS, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
TANSU_FEATURES=dynostore,libsql
CACHE=${FLOWWATCH_TANSU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flowwatch/tansu-libsql/target}
E2E_TIMEOUT=${E2E_TIMEOUT:-900}

step() { printf '\n==> %s\n' "$*"; }

# Whether cargo's install record says tansu was built with the libsql feature.
cargo_tansu_has_libsql() {
  python3 - "${CARGO_HOME:-$HOME/.cargo}/.crates2.json" <<'PY'
import json, sys
try:
    installs = json.load(open(sys.argv[1]))["installs"]
except (OSError, ValueError, KeyError):
    sys.exit(1)
ok = any(key.startswith("tansu ") and "libsql" in value.get("features", [])
         for key, value in installs.items())
sys.exit(0 if ok else 1)
PY
}

step "tansu"
if [ -z "${TANSU:-}" ]; then
  if command -v tansu >/dev/null 2>&1; then
    TANSU=$(command -v tansu)
  else
    TANSU=$HOME/.cargo/bin/tansu
  fi
  if [ ! -x "$TANSU" ] || ! cargo_tansu_has_libsql; then
    # About 25-40 minutes on 2 cores the first time; the target dir is cached between runs.
    echo "installing tansu $TANSU_VERSION with $TANSU_FEATURES (cached build in $CACHE)"
    mkdir -p "$CACHE"
    # opt-level 1, as in .ci/run: a test broker, built in about 40 % less CPU time.
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_TARGET_DIR=$CACHE timeout 3600 \
      cargo install tansu --version "$TANSU_VERSION" --locked --features "$TANSU_FEATURES"
    TANSU=$HOME/.cargo/bin/tansu
  fi
fi
"$TANSU" --version

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

WORK=$(mktemp -d)
TANSU_PID=
stop_tansu() {
  if [ -n "$TANSU_PID" ] && kill -0 "$TANSU_PID" 2>/dev/null; then
    kill -TERM "$TANSU_PID"
    for _ in $(seq 50); do kill -0 "$TANSU_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$TANSU_PID" 2>/dev/null && kill -KILL "$TANSU_PID"
    wait "$TANSU_PID" 2>/dev/null || true
  fi
  TANSU_PID=
}
trap 'stop_tansu; rm -rf "$WORK"' EXIT

PORT=$(free_port)
step "start tansu on 127.0.0.1:$PORT (memory storage)"
"$TANSU" broker \
  --listener-url "tcp://127.0.0.1:$PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$PORT" \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 &
TANSU_PID=$!
for _ in $(seq 150); do
  if ! kill -0 "$TANSU_PID" 2>/dev/null; then
    echo "tansu exited at start:" >&2
    tail -20 "$WORK/tansu.log" >&2
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    break
  fi
  sleep 0.2
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || {
  echo "tansu does not accept connections on 127.0.0.1:$PORT after 30 s" >&2
  tail -20 "$WORK/tansu.log" >&2
  exit 1
}

step "end-to-end tests (cargo test --release --test e2e)"
status=0
FLOWWATCH_E2E_BROKERS=127.0.0.1:$PORT FLOWWATCH_E2E_TANSU=$TANSU timeout "$E2E_TIMEOUT" \
  cargo test --release --locked --test e2e "$@" -- --test-threads=1 --nocapture || status=$?
if [ "$status" != 0 ]; then
  echo "end-to-end test failed (exit $status); last lines of the tansu log:" >&2
  tail -20 "$WORK/tansu.log" >&2
  exit "$status"
fi
stop_tansu

# The kill -9 loop against tansu passed twice and failed twice on the same seed (3 Dec 2026:
# records applied long after their time, see docs/testing.md); until that is understood it
# runs only when asked for.
if [ "${E2E_TANSU_TORTURE:-0}" = 1 ]; then
  step "kill -9 loop of the daemon against tansu (cargo test --release --test torture kill_minus_nine_tansu)"
  cargo build --release --locked --bin flowwatch
  FLOWWATCH_E2E_TANSU=$TANSU timeout "$E2E_TIMEOUT" \
    cargo test --release --locked --test torture "$@" -- kill_minus_nine_tansu --exact --nocapture
else
  step "kill -9 loop against tansu: skipped (E2E_TANSU_TORTURE=1 runs it; see docs/testing.md)"
fi
