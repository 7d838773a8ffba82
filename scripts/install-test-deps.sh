#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine with Node.js: the npm packages
# (from package-lock.json). Debian packages are added here as later features need them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
