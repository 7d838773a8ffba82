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
# Files run in parallel processes; each test file starts its own gateways on free ports.
exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-4}" --test-timeout=120000 "${files[@]}"
