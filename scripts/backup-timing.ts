/**
 * Measures `sluice backup` and `sluice restore` on a PostgreSQL store and a PGlite directory
 * filled with synthetic rows (docs/backup.md quotes the figures). Run:
 *   node --import tsx scripts/backup-timing.ts [TENANTS] [KEYS] [AUDIT_ENTRIES]
 * It starts its own PostgreSQL (test/harness/postgres.ts) and removes everything after.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate } from '../src/store/migrate.js';
import { openStore } from '../src/store/open.js';
import type { Store } from '../src/store/store.js';
import { adminQuery, startPostgres } from '../test/harness/postgres.js';

const [tenants = 1000, keys = 10_000, entries = 100_000] = process.argv.slice(2).map(Number);
const main = new URL('../src/cli/main.ts', import.meta.url).pathname;

function cli(args: string[]): number {
  const t = performance.now();
  execFileSync(process.execPath, ['--import', 'tsx', main, ...args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return Math.round(performance.now() - t);
}

async function fill(s: Store): Promise<void> {
  await migrate(s);
  await s.query(
    `INSERT INTO tenants (id, name, labels) SELECT 't' || i, 'Tenant ' || i, '{"tier":"gold"}' FROM generate_series(1, ${tenants}) i`,
  );
  await s.query(`INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes)
    SELECT 'k' || i, 't' || (1 + i % ${tenants}), 'key ' || i, 'sk_k' || i || '_', sha256(('s' || i)::bytea), '{read}' FROM generate_series(1, ${keys}) i`);
  await s.query(`INSERT INTO audit_entries (seq, event_id, entry, leaf_hash)
    SELECT i, 'e' || i, jsonb_build_object('id', 'e' || i, 'type', 'auth_failed', 'at', now()::text, 'tenant', 't' || (1 + i % ${tenants}), 'route', 'api', 'reason', 'unknown key', 'ip', '10.0.0.' || (i % 250)),
           sha256(('e' || i)::bytea) FROM generate_series(0, ${entries - 1}) i`);
}

const dir = mkdtempSync(join(tmpdir(), 'sluice-backup-timing-'));
const pg = await startPostgres();
try {
  for (const kind of ['postgres', 'pglite'] as const) {
    let src: string;
    let dst: string;
    if (kind === 'postgres') {
      await adminQuery(pg.url, 'CREATE DATABASE src');
      await adminQuery(pg.url, 'CREATE DATABASE dst');
      src = pg.url.replace(/\/postgres$/, '/src');
      dst = pg.url.replace(/\/postgres$/, '/dst');
    } else {
      src = join(dir, 'src');
      dst = join(dir, 'dst');
    }
    const s = await openStore(kind === 'postgres' ? { url: src } : { dataDir: src });
    await fill(s);
    await s.close();
    if (kind === 'pglite') await (await openStore({ dataDir: dst })).close(); // initdb outside the timing
    const file = join(dir, `${kind}.backup`);
    const b = cli(['backup', '--store', src, '--out', file]);
    const r = cli(['restore', '--store', dst, '--in', file]);
    console.log(
      `${kind}: ${tenants} tenants, ${keys} keys, ${entries} audit entries; backup ${b} ms, ${statSync(file).size} bytes; restore ${r} ms (each a CLI process, node + tsx start included)`,
    );
  }
} finally {
  await pg.destroy();
  rmSync(dir, { recursive: true, force: true });
}
