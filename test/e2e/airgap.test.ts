/**
 * The air-gapped install (docs/deployment.md): `npm run bundle` builds the offline bundle, its
 * install.sh installs it into a temp dir with no registry reachable (npm's registry is a closed
 * port and its config empty, so any fetch fails), and the gateway started from it answers
 * /health/ready and proxies, with every outbound connection attempt and name lookup of the process
 * recorded by a preload (test/fixtures/airgap/record-connections.mjs): none may go anywhere but the
 * configured upstream and Redis (the store is the embedded one, in the data dir). No call home.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { eventually, within } from '../harness/flow.js';
import { freePort, refusedOrigin } from '../harness/ports.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;
const preload = join(root, 'test/fixtures/airgap/record-connections.mjs');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { dev?: boolean; link?: boolean }>;
};

interface Attempt {
  pid: number;
  kind: 'tcp' | 'unix' | 'udp' | 'dns';
  host?: string;
  port?: number;
  path?: string;
}
const readAttempts = (file: string): Attempt[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Attempt)
    : [];

let work = '';
let app = '';
/** npm and the gateway run with this environment only: no proxy, no user or global npmrc. */
let cleanEnv: NodeJS.ProcessEnv = {};

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'sluice-airgap-'));
  const home = join(work, 'home');
  mkdirSync(home);
  const [userRc, globalRc] = [join(work, 'user-npmrc'), join(work, 'global-npmrc')];
  writeFileSync(userRc, '');
  writeFileSync(globalRc, '');
  const closed = refusedOrigin();
  cleanEnv = {
    PATH: process.env.PATH,
    HOME: home,
    npm_config_userconfig: userRc,
    npm_config_globalconfig: globalRc,
    // Any request npm would make goes to a port where nothing listens.
    npm_config_registry: `${closed.origin}/`,
    npm_config_update_notifier: 'false',
  };
  const { stdout } = await run('bash', [join(root, 'scripts/bundle.sh'), '--out', join(work, 'out')], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  });
  const tarball = stdout.trim().split('\n').at(-1) ?? '';
  assert.equal(tarball, join(work, 'out', `sluice-${pkg.version}-offline.tar.gz`));
  const target = join(work, 'target');
  mkdirSync(target);
  await run('tar', ['-C', target, '-xzf', tarball]);
  const dir = join(target, `sluice-${pkg.version}`);
  app = join(dir, 'app');
  assert.ok(!existsSync(join(app, 'node_modules')), 'the bundle ships no node_modules');
  await run('bash', [join(dir, 'install.sh')], { cwd: target, env: cleanEnv, maxBuffer: 16 * 1024 * 1024 });
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('the bundle installed offline holds exactly the production dependencies, the build and its migrations', () => {
  const installed = JSON.parse(readFileSync(join(app, 'node_modules/.package-lock.json'), 'utf8')) as {
    packages: Record<string, unknown>;
  };
  const production = Object.entries(lock.packages)
    .filter(([k, v]) => k !== '' && !v.dev && !v.link)
    .map(([k]) => k)
    .sort();
  assert.deepEqual(Object.keys(installed.packages).sort(), production);
  for (const dev of ['typescript', 'tsx', '@biomejs/biome'])
    assert.ok(!existsSync(join(app, 'node_modules', dev)), dev);
  assert.ok(existsSync(join(app, 'dist/cli/main.js')));
  assert.deepEqual(
    readdirSync(join(app, 'dist/store/migrations')).sort(),
    readdirSync(join(root, 'src/store/migrations')).sort(),
  );
  const sbom = JSON.parse(readFileSync(join(app, '../sbom.cdx.json'), 'utf8')) as { bomFormat: string };
  assert.equal(sbom.bomFormat, 'CycloneDX');
});

test('the recorder sees what it must: a non-loopback connect, a lookup, a named import of dns.lookup', async () => {
  const log = join(work, 'self-test.jsonl');
  const refused = refusedOrigin();
  const blackhole = '192.0.2.1'; // TEST-NET-1 (RFC 5737): never routed; the socket is destroyed at once.
  const script = `
    import net from 'node:net';
    import { lookup } from 'node:dns';
    const s = net.connect({ host: '${blackhole}', port: 9 }); s.on('error', () => {}); s.destroy();
    lookup('localhost', () => {});
    await fetch('${refused.origin}/').catch(() => {});
  `;
  await run(process.execPath, ['--import', preload, '--input-type=module', '-e', script], {
    env: { ...cleanEnv, SLUICE_CONNECT_LOG: log },
  });
  const seen = readAttempts(log);
  assert.ok(seen.some((a) => a.kind === 'tcp' && a.host === blackhole && a.port === 9));
  assert.ok(seen.some((a) => a.kind === 'dns' && a.host === 'localhost'));
  assert.ok(
    seen.some((a) => a.kind === 'tcp' && a.host === '127.0.0.1' && a.port === refused.port),
    `fetch (undici) to ${refused.origin}: ${JSON.stringify(seen)}`,
  );
  refused.close();
});

test('the gateway starts from the bundle, answers /health/ready and proxies, and connects to nothing but its upstream and Redis', async () => {
  const upstream: TestUpstream = await startUpstream();
  const redis = new URL(await testRedisUrl());
  const [port, adminPort] = [await freePort(), await freePort()];
  const dataDir = join(work, 'data');
  const configFile = join(work, 'sluice.yaml');
  writeFileSync(
    configFile,
    stringify({
      listen: { host: '127.0.0.1', port },
      admin: { host: '127.0.0.1', port: adminPort },
      store: { dataDir },
      redis: { url: redis.href },
      upstreams: { app: { targets: [{ url: upstream.url }] } },
      routes: [
        {
          name: 'public',
          match: { path: { prefix: '/public/' } },
          upstream: 'app',
          rateLimit: [{ name: 'per-ip', key: ['ip'], limit: 100, window: '1m' }],
        },
        {
          name: 'private',
          match: { path: { prefix: '/private/' } },
          upstream: 'app',
          auth: { apiKey: true },
        },
      ],
    }),
  );
  const log = join(work, 'connections.jsonl');
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', preload, join(app, 'dist/cli/main.js'), 'start', '--config', configFile],
    { cwd: work, env: { ...cleanEnv, SLUICE_CONNECT_LOG: log }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = once(child, 'exit');
  try {
    // The first start creates the embedded store (PGlite) and migrates it: seconds on a busy machine.
    const ready = await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error(`gateway exited ${child.exitCode}:\n${output}`);
        const r = await fetch(`http://127.0.0.1:${adminPort}/health/ready`).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      '/health/ready 200',
      45_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${output}`);
    });
    assert.equal(((await ready.json()) as { status: string }).status, 'ready');
    const proxied = await fetch(`http://127.0.0.1:${port}/public/hello`);
    assert.equal(proxied.status, 200);
    await proxied.arrayBuffer();
    assert.equal(upstream.seen.at(-1)?.url, '/public/hello');
    // The store (PGlite) is open: the private route refuses a missing key with the gateway's problem.
    const refused = await fetch(`http://127.0.0.1:${port}/private/x`);
    assert.equal(refused.status, 401);
    await refused.arrayBuffer();
  } finally {
    child.kill('SIGTERM');
    await within(exited, 15_000, 'the gateway to drain and exit');
    await upstream.close();
  }
  assert.equal(child.exitCode, 0, output);

  const attempts = readAttempts(log);
  const allowed = new Set([`127.0.0.1:${upstream.port}`, `${redis.hostname}:${redis.port}`]);
  const allowedHosts = new Set([...allowed].map((d) => d.slice(0, d.lastIndexOf(':'))));
  // A lookup of a configured host is no call home (for an IP literal, as ioredis does, it sends no
  // query at all); a lookup of any other name would be.
  const outside = attempts.filter((a) =>
    a.kind === 'dns'
      ? !allowedHosts.has(a.host ?? '')
      : !(a.kind === 'tcp' && allowed.has(`${a.host}:${a.port}`)),
  );
  assert.deepEqual(outside, [], `connections or lookups beyond the upstream and Redis:\n${output}`);
  // And the recorder was live in the gateway's process: it saw both configured destinations.
  for (const dest of allowed)
    assert.ok(
      attempts.some((a) => `${a.host}:${a.port}` === dest),
      dest,
    );
});
