#!/usr/bin/env bash
# The README's run command (`npm start`): on a fresh clone it installs the npm packages, builds,
# then runs Sluice on the bundled example config with the demo upstream. Extra arguments are
# passed to `sluice start` (e.g. `npm start -- --config my.yaml`).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# Rebuild when any source file (code or migration) is newer than the build.
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js \( -name '*.ts' -o -name '*.sql' \) -print -quit)" ]; then
  npm run build
fi
exec node dist/cli/main.js start --demo "$@"
