#!/usr/bin/env bash
# The whole test suite: install what it needs, type-check, lint, then every test file in parallel.
# This is the README's test command (`npm test`) and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh

echo "== typecheck"
npx tsc --noEmit -p tsconfig.json
echo "== lint"
npx biome check .

echo "== tests"
mapfile -t files < <(find test -name '*.test.ts' | sort)
# One PostgreSQL for the whole run (test/harness/postgres.ts); each test file creates its own
# database on it. Stopped (by its data dir's postmaster.pid) when this script exits.
read -r pg_url pg_dir < <(SLUICE_PG_OWNER=$$ node --import tsx test/harness/postgres.ts start)
trap 'node --import tsx test/harness/postgres.ts stop "$pg_dir"' EXIT
export SLUICE_TEST_PG_URL="$pg_url"
# One Redis for the whole run too (test/harness/redis.ts): each test file takes a database of its
# own on it (testRedisUrl); tests that stop Redis start a server of their own (startRedis).
read -r redis_url redis_dir < <(node --import tsx test/harness/redis.ts start)
trap 'node --import tsx test/harness/postgres.ts stop "$pg_dir"; node --import tsx test/harness/redis.ts stop "$redis_dir"' EXIT
export SLUICE_TEST_REDIS_URL="$redis_url"

# Files run in parallel processes; each test file starts its own gateways on free ports.
node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-4}" --test-timeout=120000 "${files[@]}"
