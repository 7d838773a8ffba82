#!/usr/bin/env bash
# `npm run bundle`: the offline (air-gapped) install bundle, docs/deployment.md "Air-gapped install".
#
#   bash scripts/bundle.sh [--out DIR]      → DIR/sluice-VERSION-offline.tar.gz (default DIR: bundle/)
#
# The tarball holds one directory, sluice-VERSION/:
#   app/          package.json, package-lock.json, dist/ (`npm run build`),
#                 examples/sluice.yaml; no node_modules
#   npm-cache/    an npm cache holding every production dependency's tarball of package-lock.json
#   sbom.cdx.json the CycloneDX SBOM of those dependencies
#   install.sh    `npm ci --offline` from npm-cache/ into app/ (no registry is ever asked)
#   SHA256SUMS    of every file above, checked by install.sh
# On the target: Node.js (package.json `engines`) and npm; nothing else, no network.
# Built on a machine that reaches the npm registry (or has the packages in its npm cache).
set -euo pipefail
cd "$(dirname "$0")/.."
out=bundle
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    *) echo "usage: bash scripts/bundle.sh [--out DIR]" >&2; exit 2 ;;
  esac
done
version=$(node -p "require('./package.json').version")
name="sluice-$version"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
dest="$stage/$name"
mkdir -p "$dest/app/examples" "$out"

# dist/ as `npm run build` writes it (tsc with tsconfig.build.json, then the migrations beside the
# compiled store), rebuilt as scripts/start.sh does: when missing or older than any source file.
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js \( -name '*.ts' -o -name '*.sql' \) -print -quit)" ]; then
  npm run build >&2
fi
cp -r dist "$dest/app/dist"
cp package.json "$dest/app/"
# The lock file with each package's tarball URL written in (`resolved`). Without it (a lock written
# with omit-lockfile-registry-resolved, as this repository's is) npm asks the registry for each
# package's metadata even when the tarball is in its cache; with it, `npm ci --offline` finds each
# tarball in the cache by its integrity and never needs a registry.
node -e '
  const fs = require("node:fs");
  const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8"));
  for (const [path, p] of Object.entries(lock.packages)) {
    if (path === "" || p.link || p.resolved || !p.version) continue;
    const name = p.name ?? path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    p.resolved = `https://registry.npmjs.org/${name}/-/${name.split("/").pop()}-${p.version}.tgz`;
  }
  fs.writeFileSync(process.argv[1], `${JSON.stringify(lock, null, 2)}\n`);
' "$dest/app/package-lock.json"
cp examples/sluice.yaml "$dest/app/examples/"

# Fill a fresh npm cache with exactly the production tarballs of the lock file: an install of them
# (--omit=dev) in a scratch copy, with the bundle's cache as npm's cache. --prefer-offline takes
# what this machine's own cache already has only when the bundle's misses, so the result is the
# same set either way; each tarball is checked against the lock file's integrity.
scratch="$stage/scratch"
mkdir -p "$scratch"
cp "$dest/app/package.json" "$dest/app/package-lock.json" "$scratch/"
(cd "$scratch" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline \
  --cache "$dest/npm-cache" --loglevel=warn >&2)
rm -rf "$scratch" "$dest/npm-cache/_logs" "$dest/npm-cache/_update-notifier-last-checked"

npx --no-install cyclonedx-npm --omit dev --spec-version 1.6 --output-reproducible \
  --output-format JSON --output-file "$dest/sbom.cdx.json"

cat > "$dest/install.sh" <<'EOF'
#!/usr/bin/env bash
# Installs Sluice from this bundle with no network: checks SHA256SUMS, then `npm ci --offline` of
# the production dependencies from ./npm-cache into ./app. Run the gateway with
#   node app/dist/cli/main.js start --config /path/to/sluice.yaml
set -euo pipefail
cd "$(dirname "$0")"
sha256sum --quiet -c SHA256SUMS
cd app
# --offline: every package comes from the bundle's cache or the install fails; --ignore-scripts:
# no production dependency has an install script, and the root package's `prepare` (a build)
# must not run.
npm ci --offline --omit=dev --ignore-scripts --no-audit --no-fund --cache ../npm-cache "$@"
echo "installed: $(pwd)/dist/cli/main.js"
EOF
chmod +x "$dest/install.sh"
(cd "$dest" && find . -type f ! -name SHA256SUMS -print0 | sort -z | xargs -0 sha256sum > SHA256SUMS)

tarball="$out/$name-offline.tar.gz"
tar -C "$stage" -czf "$tarball" "$name"
echo "$tarball"
