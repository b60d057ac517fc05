#!/usr/bin/env bash
# End-to-end test against a real Kafka-compatible broker process (tansu, in-memory storage):
# installs tansu when missing (cached build), starts it on a free port of 127.0.0.1, waits
# until it accepts connections, runs the `e2e` test binary (tests/e2e/) with
# FLOWWATCH_E2E_BROKERS set, and stops the broker on exit. Bounded in time.
# Usage: scripts/e2e-tansu.sh [extra cargo test args]     (from anywhere in the repository)
# Environment: TANSU (a tansu binary; default: tansu on PATH or ~/.cargo/bin/tansu),
# FLOWWATCH_TANSU_CACHE (build cache, default ~/.cache/flowwatch/tansu-build),
# E2E_TIMEOUT (seconds for the test run, default 900).
set -euo pipefail
cd "$(dirname "$0")/.."

TANSU_VERSION=0.6.0
CACHE=${FLOWWATCH_TANSU_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flowwatch/tansu-build}
E2E_TIMEOUT=${E2E_TIMEOUT:-900}

step() { printf '\n==> %s\n' "$*"; }

step "tansu"
if [ -z "${TANSU:-}" ]; then
  if command -v tansu >/dev/null 2>&1; then
    TANSU=$(command -v tansu)
  else
    TANSU=$HOME/.cargo/bin/tansu
  fi
fi
if [ ! -x "$TANSU" ]; then
  # About 18 minutes on 2 cores the first time; the target dir is cached between runs.
  echo "installing tansu $TANSU_VERSION (cached build in $CACHE)"
  mkdir -p "$CACHE"
  CARGO_TARGET_DIR=$CACHE timeout 3600 cargo install tansu --version "$TANSU_VERSION" \
    --locked --features dynostore
  TANSU=$HOME/.cargo/bin/tansu
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

step "end-to-end test (cargo test --release --test e2e)"
status=0
FLOWWATCH_E2E_BROKERS=127.0.0.1:$PORT timeout "$E2E_TIMEOUT" \
  cargo test --release --locked --test e2e "$@" -- --nocapture || status=$?
if [ "$status" != 0 ]; then
  echo "end-to-end test failed (exit $status); last lines of the tansu log:" >&2
  tail -20 "$WORK/tansu.log" >&2
fi
exit "$status"
