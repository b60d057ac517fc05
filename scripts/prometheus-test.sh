#!/usr/bin/env bash
# Checks flowwatch's metrics and shipped rules with a real Prometheus server.
#
# Usage: scripts/prometheus-test.sh URL      e.g. http://127.0.0.1:8080/metrics
#
# URL is a running flowwatch's /metrics (`flowwatch demo`, `flowwatch run`). The script starts
# Debian's Prometheus server (installing the `prometheus` package with apt-get if the server
# or promtool is missing) on 127.0.0.1 with a temporary configuration that scrapes URL every
# second and loads deploy/prometheus/alerts.yaml, then:
#   1. waits for a successful scrape of URL;
#   2. queries `flowwatch_breaches_total` through Prometheus' HTTP API and fails unless it
#      returns at least one sample;
#   3. evaluates every query of deploy/grafana/flowwatch.json (variables set to match all),
#      failing on any PromQL error, and checks that every shipped rule loaded and evaluates
#      without error;
#   4. runs `promtool check rules` and `promtool test rules` on the shipped rules.
# Everything is bounded in time (PROMETHEUS_TEST_TIMEOUT seconds per wait, default 60) and the
# server is stopped and its data removed on exit, whatever happens. Needs curl and python3.
set -euo pipefail

usage() { echo "usage: $0 URL   (a running flowwatch's /metrics, e.g. http://127.0.0.1:8080/metrics)" >&2; exit 2; }
[ $# -eq 1 ] || usage
url=$1
case "$url" in http://* | https://*) ;; *) usage ;; esac

root=$(cd "$(dirname "$0")/.." && pwd)
wait_seconds=${PROMETHEUS_TEST_TIMEOUT:-60}

fail() { echo "prometheus-test: FAILED: $*" >&2; exit 1; }
step() { echo "prometheus-test: $*"; }

for tool in curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is required (apt-get install $tool)"
done

# Debian's package has both the server and promtool; install it only when one is missing.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  command -v apt-get >/dev/null ||
    fail "prometheus and promtool are missing and apt-get is not available: install Prometheus 2.x (server and promtool) on the PATH"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
  step "installing Debian's prometheus package"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends prometheus >/dev/null ||
    { $sudo apt-get update >/dev/null && $sudo apt-get install -y --no-install-recommends prometheus >/dev/null; } ||
    fail "could not install the prometheus package: run 'sudo apt-get install prometheus'"
fi
prometheus_bin=$(command -v prometheus)
promtool_bin=$(command -v promtool)

workdir=$(mktemp -d -t flowwatch-prometheus-test.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    # Prometheus flushes its head block on SIGTERM; give it a moment, then insist.
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Split the URL into scheme, host:port and path for the scrape configuration.
read -r scheme target metrics_path < <(python3 - "$url" <<'EOF'
import sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
port = u.port or (443 if u.scheme == "https" else 80)
path = (u.path or "/metrics") + (("?" + u.query) if u.query else "")
print(u.scheme, f"{u.hostname}:{port}", path)
EOF
)

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
api="http://127.0.0.1:$port"

cp "$root/deploy/prometheus/alerts.yaml" "$workdir/alerts.yaml"
cat >"$workdir/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $workdir/alerts.yaml
scrape_configs:
  - job_name: flowwatch
    scheme: $scheme
    metrics_path: "$metrics_path"
    static_configs:
      - targets: ["$target"]
EOF
"$promtool_bin" check config "$workdir/prometheus.yml" >/dev/null ||
  fail "the generated configuration is invalid: $(cat "$workdir/prometheus.yml")"

step "starting $("$prometheus_bin" --version 2>&1 | head -1) on 127.0.0.1:$port, scraping $url"
"$prometheus_bin" \
  --config.file="$workdir/prometheus.yml" \
  --storage.tsdb.path="$workdir/data" \
  --web.listen-address="127.0.0.1:$port" \
  --log.level=warn >"$workdir/prometheus.log" 2>&1 &
server_pid=$!

# get PATH [curl args...]: the body of a GET to the local Prometheus API.
get() { local path=$1; shift; curl -fsS --max-time 5 "$@" "$api$path"; }

# wait_for DESCRIPTION COMMAND...: retries COMMAND every half second until it succeeds.
wait_for() {
  local what=$1; shift
  local deadline=$((SECONDS + wait_seconds))
  until "$@" >/dev/null 2>&1; do
    kill -0 "$server_pid" 2>/dev/null || fail "prometheus exited: $(tail -20 "$workdir/prometheus.log")"
    [ $SECONDS -lt $deadline ] ||
      fail "timed out after ${wait_seconds}s waiting for $what$(cat "$workdir/scrape-error" 2>/dev/null | sed 's/^/: /')"
    sleep 0.5
  done
}

target_up() {
  get /api/v1/targets | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
for target in targets:
    if target["lastError"]:
        print("last scrape error: " + target["lastError"], file=open(sys.argv[1], "w"))
sys.exit(0 if targets and all(t["health"] == "up" for t in targets) else 1)' "$workdir/scrape-error"
}

wait_for "Prometheus to become ready" get /-/ready -o /dev/null
wait_for "a successful scrape of $url" target_up
step "scraped $url"

# instant_query QUERY: the JSON answer of an instant query (fails on a PromQL error).
instant_query() { get /api/v1/query --get --data-urlencode "query=$1"; }

breaches=$(instant_query 'flowwatch_breaches_total')
samples=$(python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["result"]))' <<<"$breaches")
[ "$samples" -gt 0 ] || fail "flowwatch_breaches_total returned no sample: $breaches"
step "flowwatch_breaches_total: $samples series, e.g. $(python3 -c '
import json, sys
first = json.load(sys.stdin)["data"]["result"][0]
print({k: v for k, v in first["metric"].items() if k not in ("job", "instance")}, "=", first["value"][1])' <<<"$breaches")"

build=$(instant_query 'flowwatch_build_info')
python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)' <<<"$build" ||
  fail "flowwatch_build_info returned no sample: $build"

# Every dashboard query must be valid PromQL once Grafana's variables are filled in.
python3 - "$root/deploy/grafana/flowwatch.json" >"$workdir/queries" <<'EOF'
import json, sys
dashboard = json.load(open(sys.argv[1]))
def targets(panels):
    for panel in panels:
        yield from panel.get("targets", [])
        yield from targets(panel.get("panels", []))
for target in targets(dashboard["panels"]):
    expr = target["expr"].replace("$__rate_interval", "1m")
    for name in ("job", "instance", "flow"):
        expr = expr.replace("$" + name, ".*")
    print(" ".join(expr.split()))
EOF
checked=0
while IFS= read -r query; do
  answer=$(get /api/v1/query --get --data-urlencode "query=$query" 2>&1) ||
    fail "dashboard query rejected by Prometheus: $query: $answer"
  checked=$((checked + 1))
done <"$workdir/queries"
[ "$checked" -gt 0 ] || fail "no queries found in deploy/grafana/flowwatch.json"
step "all $checked dashboard queries evaluate"

rules_evaluated() {
  get /api/v1/rules | python3 -c '
import json, sys
rules = [rule for group in json.load(sys.stdin)["data"]["groups"] for rule in group["rules"]]
bad = [rule["name"] + ": " + rule.get("lastError", "") for rule in rules if rule.get("health") != "ok"]
if bad:
    print("\n".join(bad), file=sys.stderr)
print(len(rules))
sys.exit(1 if bad or not rules else 0)'
}
wait_for "every shipped rule to evaluate without error" rules_evaluated
step "$(rules_evaluated) shipped rules loaded and evaluate"

(cd "$root/deploy/prometheus" && "$promtool_bin" check rules alerts.yaml && "$promtool_bin" test rules alerts.test.yaml) ||
  fail "promtool rejected the shipped rules"

step "ok"
