#!/usr/bin/env bash
# The real Prometheus server against a running flowwatch: starts `flowwatch demo` (embedded
# broker, simulated traffic, tracker) on a free 127.0.0.1 port, runs
# scripts/prometheus-test.sh against its /metrics (scrape, query the breach counter, check and
# unit-test the shipped rules), and stops the demo. Bounded in time.
# Usage: scripts/prometheus-demo.sh   (after `cargo build --release`)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${FLOWWATCH_BIN:-target/release/flowwatch}"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
log="$(mktemp)"
"$bin" demo --listen "127.0.0.1:$port" --speed 600 --rate 8 --duration 180s >"$log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/livez" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/livez" >/dev/null || { echo "the demo did not start:"; cat "$log"; exit 1; }
# Let some breaches happen first (10 s at 600x is 100 minutes of simulated time).
sleep 10
scripts/prometheus-test.sh "http://127.0.0.1:$port/metrics"
kill -TERM "$demo"
wait "$demo"
echo "prometheus against the demo: ok"
