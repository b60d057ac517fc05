#!/usr/bin/env bash
# The web page in real headless Chromium (Debian's `chromium`): serves two recorded examples
# with `flowwatch replay --serve 127.0.0.1:PORT`, runs tests/browser/page.test.mjs against each
# (no console errors, diagram counts equal the API's, the instance timeline, hostile payloads
# shown as text, operator buttons), and saves docs/screenshot.png for the README.
#
# Installs what it needs, idempotently: chromium and nodejs (apt, when missing and run as root)
# and playwright-core (npm, into a cache directory outside the repository). Bounded in time.
# Usage: scripts/browser-test.sh          (from anywhere inside the repository)
# Environment: FLOWWATCH_BIN (a built binary; default: cargo build, debug), CHROMIUM (default
# /usr/bin/chromium), FLOWWATCH_BROWSER_CACHE (default ~/.cache/flowwatch-browser-test).
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION=1.65.1
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CACHE=${FLOWWATCH_BROWSER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flowwatch-browser-test}

step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "error: $* missing; install it (Debian: apt-get install $*)" >&2
    exit 1
  fi
  timeout 900 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -qq "$@" >/dev/null
}

step "prerequisites"
[ -x "$CHROMIUM" ] || apt_install chromium
command -v node >/dev/null && command -v npm >/dev/null || apt_install nodejs npm
installed=$(node -p "try { require('$CACHE/node_modules/playwright-core/package.json').version } catch (_) { '' }")
if [ "$installed" != "$PLAYWRIGHT_VERSION" ]; then
  mkdir -p "$CACHE"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 600 npm install --prefix "$CACHE" --no-save \
    --no-audit --no-fund --loglevel=error "playwright-core@$PLAYWRIGHT_VERSION"
fi
echo "chromium: $("$CHROMIUM" --version 2>/dev/null | head -1); playwright-core $PLAYWRIGHT_VERSION in $CACHE"

if [ -z "${FLOWWATCH_BIN:-}" ]; then
  step "build (debug)"
  cargo build --locked --bin flowwatch
  FLOWWATCH_BIN=target/debug/flowwatch
fi

WORK=$(mktemp -d)
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=
}
trap 'stop_server; rm -rf "$WORK"' EXIT

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

TOKEN=browser-test-token
passed=0
failed=0

# run NAME INPUT UNTIL|- [SCREENSHOT]: serve one example and run the browser test against it.
run() {
  local name=$1 input=$2 until=$3 screenshot=${4:-}
  step "browser test: $name"
  local port
  port=$(free_port)
  local until_args=()
  [ "$until" = - ] || until_args=(--until "$until")
  FLOWWATCH__HTTP__OPERATOR_TOKEN=$TOKEN "$FLOWWATCH_BIN" replay --flows flows --input "$input" \
    "${until_args[@]}" --serve "127.0.0.1:$port" >"$WORK/$name.signals.jsonl" 2>"$WORK/$name.server.log" &
  SERVER_PID=$!
  local status=0
  BASE_URL="http://127.0.0.1:$port" CHROMIUM="$CHROMIUM" PLAYWRIGHT_DIR="$CACHE/node_modules/playwright-core" \
    EXAMPLE="$name" OPERATOR_TOKEN=$TOKEN SCREENSHOT="$screenshot" \
    timeout 180 node tests/browser/page.test.mjs | tee "$WORK/$name.test.log" || status=$?
  stop_server
  local line
  line=$(grep -E '^browser: [0-9]+ passed, [0-9]+ failed$' "$WORK/$name.test.log" | tail -1 || true)
  if [ -z "$line" ]; then
    echo "error: the browser test for $name did not finish (exit $status); server log:" >&2
    cat "$WORK/$name.server.log" >&2
    failed=$((failed + 1))
    return
  fi
  passed=$((passed + $(echo "$line" | awk '{print $2}')))
  failed=$((failed + $(echo "$line" | awk '{print $4}')))
  if [ "$status" != 0 ] && [ "$(echo "$line" | awk '{print $4}')" = 0 ]; then
    failed=$((failed + 1)) # the runner failed outside any check
  fi
}

run hostile-payload tests/examples/hostile-payload.jsonl 2026-01-05T17:00:00Z
# The checkout day's morning (until about 12:05): open, breached and retried instances, for the
# screenshot.
head -n 200 tests/examples/checkout-day.jsonl >"$WORK/checkout-morning.jsonl"
run checkout-morning "$WORK/checkout-morning.jsonl" - docs/screenshot.png

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
