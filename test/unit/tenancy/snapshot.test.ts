/**
 * Tenants and keys through the repository and the snapshot, the same suite on PGlite and on a
 * real PostgreSQL 15: CRUD with its change records, the key lifecycle as the hot path sees it,
 * a change reaching a second replica's snapshot within a second, and (PostgreSQL) the resync
 * after the LISTEN connection is killed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { migrate } from '../../../src/store/migrate.js';
import type { Store } from '../../../src/store/store.js';
import { snapshotDirectory } from '../../../src/tenancy/directory.js';
import { TenancyError, TenancyRepository } from '../../../src/tenancy/repository.js';
import { lookupKey, SnapshotSource } from '../../../src/tenancy/snapshot.js';
import { adminQuery, STORE_KINDS, type TestStores, testStores } from '../../harness/postgres.js';

const admin = { actor: 'alice@example.com', role: 'admin' };

async function rejectsWith(p: Promise<unknown>, code: TenancyError['code']) {
  await assert.rejects(p, (err: unknown) => err instanceof TenancyError && err.code === code);
}

for (const kind of STORE_KINDS) {
  describe(`tenancy on ${kind}`, () => {
    let stores: TestStores;
    let store: Store;
    let repo: TenancyRepository;
    let source: SnapshotSource;
    before(async () => {
      stores = await testStores(kind);
      store = await stores.open();
      await migrate(store);
      repo = new TenancyRepository(store);
      source = new SnapshotSource(store);
      await source.start();
    });
    after(async () => {
      await source.close();
      await stores.close();
    });

    test('tenants: create, read, list, update, suspend, resume, delete; each change recorded with who and what', async () => {
      const created = await repo.createTenant(admin, {
        id: 'acme',
        name: 'Acme',
        region: 'eu-west',
        plan: 'gold',
        labels: { team: 'core' },
      });
      assert.equal(created.status, 'active');
      assert.deepEqual(await repo.getTenant('acme'), created);
      await repo.createTenant(admin, { id: 'beta', name: 'Beta' });
      assert.deepEqual(
        (await repo.listTenants()).map((t) => t.id),
        ['acme', 'beta'],
      );
      const updated = await repo.updateTenant(admin, 'acme', { plan: 'platinum', region: null });
      assert.equal(updated.plan, 'platinum');
      assert.equal(updated.region, null);
      assert.equal(updated.name, 'Acme');
      assert.deepEqual(updated.labels, { team: 'core' });
      assert.ok(updated.updatedAt.getTime() >= created.updatedAt.getTime());
      const ops = { actor: 'bob', role: 'operator' };
      assert.equal((await repo.suspendTenant(ops, 'acme')).status, 'suspended');
      assert.equal((await repo.resumeTenant(ops, 'acme')).status, 'active');
      await repo.deleteTenant(admin, 'beta');
      assert.equal(await repo.getTenant('beta'), undefined);

      const changes = (await repo.listChanges()).reverse();
      assert.deepEqual(
        changes.map((c) => [c.actor, c.role, c.action, c.target]),
        [
          ['alice@example.com', 'admin', 'tenant.create', 'tenant:acme'],
          ['alice@example.com', 'admin', 'tenant.create', 'tenant:beta'],
          ['alice@example.com', 'admin', 'tenant.update', 'tenant:acme'],
          ['bob', 'operator', 'tenant.suspend', 'tenant:acme'],
          ['bob', 'operator', 'tenant.resume', 'tenant:acme'],
          ['alice@example.com', 'admin', 'tenant.delete', 'tenant:beta'],
        ],
      );
      const suspend = changes[3];
      assert.equal((suspend!.before as { status: string }).status, 'active');
      assert.equal((suspend!.after as { status: string }).status, 'suspended');
      assert.equal(changes[0]?.before, null);
      assert.equal(changes[5]?.after, null);
    });

    test('tenants: refused input changes nothing and records nothing', async () => {
      const before = (await repo.listChanges()).length;
      await rejectsWith(repo.createTenant(admin, { id: 'acme', name: 'Again' }), 'conflict');
      await rejectsWith(repo.createTenant(admin, { id: 'Not_Valid', name: 'x' }), 'invalid');
      await rejectsWith(repo.createTenant(admin, { id: 'ok-id', name: '' }), 'invalid');
      await rejectsWith(
        repo.createTenant(admin, {
          id: 'ok-id',
          name: 'x',
          labels: { n: 1 } as unknown as Record<string, string>,
        }),
        'invalid',
      );
      await rejectsWith(repo.updateTenant(admin, 'nobody', { name: 'x' }), 'not-found');
      await rejectsWith(repo.suspendTenant(admin, 'nobody'), 'not-found');
      await rejectsWith(repo.deleteTenant(admin, 'nobody'), 'not-found');
      await rejectsWith(repo.createKey(admin, 'nobody', { name: 'k' }), 'not-found');
      assert.equal((await repo.listChanges()).length, before);
      assert.equal(await repo.getTenant('ok-id'), undefined);
    });

    test('keys: the plaintext is returned once; lists and records never carry the secret or its hash', async () => {
      await repo.createTenant(admin, { id: 'keys-co', name: 'Keys Co' });
      const { key, plaintext } = await repo.createKey(admin, 'keys-co', {
        name: 'ci',
        scopes: ['read', 'write'],
      });
      assert.ok(plaintext.startsWith(key.prefix));
      assert.equal(key.prefix, `sk_${key.id}_`);
      assert.deepEqual(key.scopes, ['read', 'write']);
      const listed = await repo.listKeys('keys-co');
      assert.deepEqual(listed, [key]);
      assert.deepEqual(await repo.getKey(key.id), key);
      const secret = plaintext.slice(key.prefix.length);
      const everything = JSON.stringify([listed, await repo.listKeys(), await repo.listChanges()]);
      assert.ok(!everything.includes(secret));
      assert.ok(!/hash/i.test(everything));
      const [rec] = await repo.listChanges(1);
      assert.equal(rec?.action, 'key.create');
      assert.equal(rec?.target, `key:${key.id}`);
      // Deleting the tenant takes its keys with it.
      await repo.deleteTenant(admin, 'keys-co');
      assert.deepEqual(await repo.listKeys('keys-co'), []);
    });

    test('key lifecycle as the hot path sees it: create, use, expire, suspend, revoke', async () => {
      await repo.createTenant(admin, { id: 'life', name: 'Life' });
      const expiresAt = new Date(Date.now() + 60_000);
      const { key, plaintext } = await repo.createKey(admin, 'life', {
        name: 'app',
        scopes: ['orders:read'],
        expiresAt,
      });
      const snap = await source.until((s) => s.keysById.has(key.id));
      const ok = lookupKey(snap, plaintext, Date.now());
      assert.ok(ok.ok);
      assert.equal(ok.tenant.id, 'life');
      assert.deepEqual(ok.key.scopes, ['orders:read']);
      assert.equal(ok.key.expiresAt, expiresAt.getTime());
      // Expiry is judged against the clock of the request, no reload needed.
      assert.deepEqual(lookupKey(snap, plaintext, expiresAt.getTime()), {
        ok: false,
        reason: 'expired',
        keyId: key.id,
      });

      await repo.suspendTenant(admin, 'life');
      await source.until((s) => s.tenantsById.get('life')?.status === 'suspended');
      assert.equal(
        (lookupKey(source.current, plaintext, Date.now()) as { reason: string }).reason,
        'tenant-suspended',
      );
      await repo.resumeTenant(admin, 'life');
      await source.until((s) => s.tenantsById.get('life')?.status === 'active');
      assert.ok(lookupKey(source.current, plaintext, Date.now()).ok);

      const revoked = await repo.revokeKey(admin, key.id);
      assert.ok(revoked.revokedAt instanceof Date);
      await source.until((s) => s.keysById.get(key.id)?.revoked === true);
      assert.equal(
        (lookupKey(source.current, plaintext, Date.now()) as { reason: string }).reason,
        'revoked',
      );
      // Revoking again keeps the first time.
      assert.deepEqual((await repo.revokeKey(admin, key.id)).revokedAt, revoked.revokedAt);
      await rejectsWith(repo.revokeKey(admin, 'nokey'), 'not-found');
    });

    test('the IdentityDirectory the auth policy reads answers from the snapshot', async () => {
      await repo.createTenant(admin, { id: 'dir-co', name: 'Dir Co', region: 'us' });
      const { key, plaintext } = await repo.createKey(admin, 'dir-co', { name: 'k', scopes: ['a'] });
      await source.until((s) => s.keysById.has(key.id));
      const dir = snapshotDirectory(source);
      assert.deepEqual(dir.verifyKey(plaintext, Date.now()), {
        ok: true,
        keyId: key.id,
        tenantId: 'dir-co',
        scopes: ['a'],
      });
      assert.deepEqual(dir.verifyKey('sk_nope', Date.now()), { ok: false, reason: 'malformed' });
      assert.equal(dir.tenant('dir-co')?.region, 'us');
      assert.equal(dir.tenant('nobody'), undefined);
      // A suspended tenant's key still verifies; the tenant policy refuses it with its own 403.
      await repo.suspendTenant(admin, 'dir-co');
      await source.until((s) => s.tenantsById.get('dir-co')?.status === 'suspended');
      assert.equal(dir.verifyKey(plaintext, Date.now()).ok, true);
      assert.equal(dir.tenant('dir-co')?.status, 'suspended');
    });

    test('a change reaches a second replica within a second (LISTEN/NOTIFY)', async (t) => {
      // PostgreSQL: another store (pool + LISTEN connection) on the same database, as another
      // process would have. PGlite is one process: a second source on the same store.
      const other = await stores.open();
      const replica = new SnapshotSource(other);
      await replica.start();
      try {
        await repo.createTenant(admin, { id: 'replicated', name: 'R' });
        const t0 = performance.now();
        const { key, plaintext } = await repo.createKey(admin, 'replicated', { name: 'k' });
        await replica.until((s) => s.keysById.has(key.id), 5000);
        assert.ok(lookupKey(replica.current, plaintext, Date.now()).ok);
        await repo.revokeKey(admin, key.id);
        await replica.until((s) => s.keysById.get(key.id)?.revoked === true, 5000);
        const ms = performance.now() - t0;
        // Reported, not asserted (speed is measured in bench/): each wait above is bounded at 5 s.
        t.diagnostic(`${kind}: create + revoke seen by the replica in ${ms.toFixed(0)} ms`);
      } finally {
        await replica.close();
      }
    });

    test('a burst of changes is coalesced into few reloads; a snapshot of 10k keys loads whole (its time reported)', async (t) => {
      await repo.createTenant(admin, { id: 'bulk', name: 'Bulk' });
      const startVersion = source.current.version;
      // 10,000 keys in one statement (one notification), then 20 single changes in a burst.
      await store.query(
        `INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash)
         SELECT 'bulk' || i, 'bulk', 'k' || i, 'sk_bulk' || i || '_', sha256(i::text::bytea) FROM generate_series(1, 10000) AS i`,
      );
      for (let i = 0; i < 20; i++) await repo.updateTenant(admin, 'bulk', { name: `Bulk ${i}` });
      const snap = await source.until(
        (s) => s.tenantsById.get('bulk')?.name === 'Bulk 19' && s.keysById.has('bulk10000'),
      );
      const reloads = snap.version - startVersion;
      t.diagnostic(`${kind}: 21 committed changes → ${reloads} reloads`);
      assert.ok(reloads < 21, `${reloads} reloads`);
      // A full load of the snapshot with 10k+ keys, three times.
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        await source.reload();
        times.push(source.current.loadMs);
      }
      assert.ok(source.current.keysById.size >= 10_000);
      const best = Math.min(...times);
      t.diagnostic(
        `${kind}: full snapshot load with ${source.current.keysById.size} keys: ${times.map((x) => x.toFixed(0)).join(', ')} ms`,
      );
      // Reported, not asserted: speed is measured, and a busy 2-core machine once took 1.5 s.
      t.diagnostic(`${kind}: best of three ${best.toFixed(0)} ms`);
      // And the hot path: one lookup.
      const probe = await repo.createKey(admin, 'bulk', { name: 'probe' });
      await source.until((s) => s.keysById.has(probe.key.id));
      const snapNow = source.current;
      const n = 100_000;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) lookupKey(snapNow, probe.plaintext, Date.now());
      const ns = ((performance.now() - t0) * 1e6) / n;
      t.diagnostic(`${kind}: lookupKey ${ns.toFixed(0)} ns per call`);
      assert.ok(lookupKey(snapNow, probe.plaintext, Date.now()).ok);
    });

    if (kind === 'postgres') {
      test('after the LISTEN connection is killed, the snapshot resyncs and catches a change made meanwhile', async () => {
        const other = await stores.open({ reconnectMinMs: 200, reconnectMaxMs: 400 });
        const replica = new SnapshotSource(other);
        await replica.start();
        const resynced = new Promise<void>((resolve) => other.onResync(resolve));
        try {
          const url = stores.url as string;
          // Kill the replica's LISTEN connection (the first source's stays) ...
          const killed = await adminQuery<{ pid: number }>(
            url,
            `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sluice-listen'
             ORDER BY backend_start DESC LIMIT 1`,
            [new URL(url).pathname.slice(1)],
          );
          await adminQuery(url, 'SELECT pg_terminate_backend($1)', [killed[0]?.pid]);
          // ... and change something while it is away (back-off ≥ 100 ms): its notification is lost.
          await repo.createTenant(admin, { id: 'while-away', name: 'W' });
          await resynced;
          await replica.until((s) => s.tenantsById.has('while-away'), 2000);
          // And notifications flow again afterwards.
          await repo.createTenant(admin, { id: 'after-back', name: 'A' });
          await replica.until((s) => s.tenantsById.has('after-back'), 1000);
        } finally {
          await replica.close();
        }
      });
    }
  });
}
