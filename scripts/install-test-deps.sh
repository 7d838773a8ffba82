#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Node.js: the npm packages
# (from package-lock.json) and the Debian packages of the real services the tests start
# (PostgreSQL 15 for the store, Redis for shared counters) and promtool (Debian's `prometheus`) that
# checks and unit-tests the generated SLO rules, and `unzip`, which extracts the Helm binary the chart
# tests run (test/harness/helm.ts), `haproxy`, the balancer in front of the fleet test's replicas
# (test/harness/haproxy.ts), and Chromium, the real browser the console tests drive through
# playwright-core (test/e2e/console.test.ts; never a downloaded browser build). Needs root only when
# something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Debian package → a file it installs that the tests use.
declare -A wanted=(
  [postgresql]=/usr/lib/postgresql/15/bin/initdb
  [redis-server]=/usr/bin/redis-server
  [prometheus]=/usr/bin/promtool
  [unzip]=/usr/bin/unzip
  [haproxy]=/usr/sbin/haproxy
  [chromium]=/usr/bin/chromium
)
missing=()
for pkg in "${!wanted[@]}"; do
  [ -x "${wanted[$pkg]}" ] || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
