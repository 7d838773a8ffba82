#!/usr/bin/env bash
# The README's release demo (`npm run demo:canary`): installs and builds like `npm start`, then
# runs src/demo/canary.ts: a healthy version promoted step by step, then a bad one rolled back,
# with each decision printed as it happens.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
if [ ! -f dist/demo/canary.js ] || [ -n "$(find src -newer dist/demo/canary.js \( -name '*.ts' -o -name '*.sql' \) -print -quit)" ]; then
  npm run build
fi
exec node dist/demo/canary.js
