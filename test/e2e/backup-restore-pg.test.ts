/**
 * `sluice backup` / `sluice restore` on PostgreSQL (a database of its own on SLUICE_TEST_PG_URL's
 * server): see test/harness/backup-restore.ts. Plus the format's portability: a backup of the
 * embedded store restores into PostgreSQL (moving from one node to replicas).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { backupStore } from '../../src/store/backup/export.js';
import { restoreStore } from '../../src/store/backup/restore.js';
import { migrate } from '../../src/store/migrate.js';
import { openStore } from '../../src/store/open.js';
import { backupRestoreSuite } from '../harness/backup-restore.js';
import { testDatabase } from '../harness/postgres.js';

backupRestoreSuite('postgres');

it('a backup of the embedded store restores into PostgreSQL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-backup-cross-'));
  const file = join(dir, 'pglite.backup');
  const db = await testDatabase();
  try {
    const lite = await openStore({ url: 'memory://' });
    try {
      await migrate(lite);
      await lite.query("INSERT INTO tenants (id, name, labels) VALUES ('acme', 'Acme', '{\"tier\": 1}')");
      await lite.query(
        "INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scopes) VALUES ('k1', 'acme', 'ci', 'sk_k1_', sha256('s'), '{read,write}')",
      );
      await lite.query(
        "INSERT INTO admin_changes (actor, role, action, target) VALUES ('ops', 'admin', 'create', 'tenant:acme')",
      );
      await backupStore(lite, file);
    } finally {
      await lite.close();
    }
    const pg = await openStore({ url: db.url });
    try {
      const r = await restoreStore(pg, file);
      assert.equal(r.header.source, 'pglite');
      assert.deepEqual(
        await pg.query(
          "SELECT t.labels, k.scopes, k.secret_hash = sha256('s') AS same FROM tenants t JOIN api_keys k ON k.tenant_id = t.id",
        ),
        [{ labels: { tier: 1 }, scopes: ['read', 'write'], same: true }],
      );
      // The serial sequence goes on after the restored rows, not from 1.
      const [c] = await pg.query<{ id: string }>(
        "INSERT INTO admin_changes (actor, role, action, target) VALUES ('ops', 'admin', 'update', 'tenant:acme') RETURNING id::text AS id",
      );
      assert.equal(c?.id, '2');
    } finally {
      await pg.close();
    }
  } finally {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  }
});
