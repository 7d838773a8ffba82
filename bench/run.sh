#!/usr/bin/env bash
# `npm run bench`: Sluice side by side with direct, nginx (one worker) and @fastify/http-proxy,
# on loopback only. Installs nginx and wrk from Debian when missing, builds Sluice when dist is
# stale, then hands over to bench/run.mjs (which starts, measures and stops every server).
# Knobs (environment): ROUNDS, DURATION, WARMUP, TARGETS, CONNS, LOAD_CPU, PROXY_CPU; see bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
# BENCH=tls (npm run bench:tls) also needs h2load and openssl.
if [ "${BENCH:-run}" = tls ]; then
  command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
fi
# BENCH=fleet (npm run bench:fleet) also needs haproxy.
if [ "${BENCH:-run}" = fleet ]; then
  command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  # The benchmark never uses nginx's system service; it runs its own instances (bench/.work/).
  export DEBIAN_FRONTEND=noninteractive
  # Only refresh the package lists when the install cannot proceed without it (once).
  if ! apt-get install -y --no-install-recommends "${need[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${need[@]}"
  fi
fi

if [ ! -d node_modules/fastify ] || [ ! -d node_modules/@fastify/http-proxy ]; then
  npm ci --no-audit --no-fund
fi
# BENCH=identity (npm run bench:identity, bench/identity.mjs) signs its tokens with jose and runs
# Sluice with the embedded store (PGlite): a node_modules installed before they were dependencies lacks them.
if [ "${BENCH:-run}" = identity ] && { [ ! -d node_modules/jose ] || [ ! -d node_modules/@electric-sql/pglite ]; }; then
  npm ci --no-audit --no-fund
fi
# Rebuild when any source file is newer than the build; not for BENCH=delivery with SLUICE_MAIN
# (another build is measured, e.g. a clean export of a commit while others edit the tree).
if { [ "${BENCH:-run}" != delivery ] || [ -z "${SLUICE_MAIN:-}" ]; } &&
  { [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -name '*.ts' -print -quit)" ]; }; then
  echo "== building sluice (dist is stale)"
  npm run build
fi

mkdir -p bench/.work
# The orchestrator is light (it waits on wrk); keep it on the load generator's core.
# BENCH=reload (npm run bench:reload) runs bench/reload.mjs instead; BENCH=tls bench/tls.mjs;
# BENCH=failover (npm run bench:failover) bench/failover.mjs; BENCH=delivery bench/delivery.mjs;
# BENCH=fleet (npm run bench:fleet) bench/fleet.mjs.
exec taskset -c "${LOAD_CPU:-0}" node "bench/${BENCH:-run}.mjs" "$@"
