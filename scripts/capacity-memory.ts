/**
 * Memory per route, tenant and key (docs/capacity.md quotes the figures): starts the built gateway
 * (dist/cli/main.js) on configs with 0 and ROUTES routes, and on PGlite stores with 0 and
 * TENANTS tenants holding KEYS keys (the tenancy snapshot every replica keeps in memory), and reads
 * each process's heap in use (its own /metrics) and VmRSS once it is ready and has settled. Run after `npm run build`:
 *   node --import tsx scripts/capacity-memory.ts [ROUTES] [TENANTS] [KEYS]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { migrate } from '../src/store/migrate.js';
import { openStore } from '../src/store/open.js';
import { freePort } from '../test/harness/ports.js';

const [routes = 1000, tenants = 1000, keys = 10_000] = process.argv.slice(2).map(Number);
const main = new URL('../dist/cli/main.js', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sluice-capacity-'));

function config(name: string, n: number, store: string, port: number, admin: number): string {
  const file = join(dir, `${name}.yaml`);
  const rs = Array.from(
    { length: Math.max(n, 1) },
    (_, i) => `  - name: r${i}\n    match: { path: { prefix: /r${i}/ } }\n    upstream: up\n`,
  ).join('');
  writeFileSync(
    file,
    `listen: { host: 127.0.0.1, port: ${port} }\nadmin: { host: 127.0.0.1, port: ${admin} }\n` +
      `store: ${store}\nlogging: { level: warn }\nupstreams:\n  up:\n    targets:\n      - url: http://127.0.0.1:9\nroutes:\n${rs}`,
  );
  return file;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

async function measure(name: string, n: number, store: string): Promise<{ rss: number; heapKb: number }> {
  const port = await freePort();
  const admin = await freePort();
  const p: ChildProcess = spawn(
    process.execPath,
    [main, 'start', '--config', config(name, n, store, port, admin)],
    {
      stdio: 'ignore',
    },
  );
  try {
    for (let i = 0; ; i++) {
      const ok = await fetch(`http://127.0.0.1:${admin}/health/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (i > 300) throw new Error(`${name} never became ready`);
      await delay(100);
    }
    await delay(3000); // let start-up garbage be collected
    const text = await (await fetch(`http://127.0.0.1:${admin}/metrics`)).text();
    const heap = Number(/^sluice_process_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? Number.NaN);
    return { rss: rssKb(p.pid!), heapKb: heap / 1024 };
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => p.once('exit', r));
  }
}

try {
  const empty = join(dir, 'empty');
  const full = join(dir, 'full');
  for (const [d, t, k] of [
    [empty, 0, 0],
    [full, tenants, keys],
  ] as const) {
    const s = await openStore({ dataDir: d });
    await migrate(s);
    if (t > 0) {
      await s.query(
        `INSERT INTO tenants (id, name) SELECT 't' || i, 'Tenant ' || i FROM generate_series(1, ${t}) i`,
      );
      await s.query(`INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes)
        SELECT 'k' || i, 't' || (1 + i % ${t}), 'key ' || i, 'sk_k' || i || '_', sha256(('s' || i)::bytea), '{read}'
        FROM generate_series(1, ${k}) i`);
    }
    await s.close();
  }
  const base = await measure('base', 1, empty);
  const many = await measure('routes', routes, empty);
  const tenancy = await measure('tenancy', 1, full);
  const mb = (x: number) => `${(x / 1024).toFixed(1)} MB`;
  const line = (what: string, m: { rss: number; heapKb: number }) =>
    `${what.padEnd(34)} heap used ${mb(m.heapKb).padStart(9)}, RSS ${mb(m.rss).padStart(9)}`;
  console.log(line('1 route, empty store', base));
  console.log(
    `${line(`${routes} routes, empty store`, many)}  → ${((many.heapKb - base.heapKb) / routes).toFixed(2)} kB heap per route`,
  );
  console.log(
    `${line(`1 route, ${tenants} tenants, ${keys} keys`, tenancy)}  → ${(((tenancy.heapKb - base.heapKb) * 1024) / keys).toFixed(0)} bytes heap per key (tenants included)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
