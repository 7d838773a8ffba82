/**
 * PostgreSQL goes away: the snapshot keeps answering from memory, reloads fail quietly and are
 * retried, and when the server is back the snapshot catches up with changes made since.
 * On a server of its own (stopping the shared one would break the other test files).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { migrate } from '../../../src/store/migrate.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { TenancyRepository } from '../../../src/tenancy/repository.js';
import { lookupKey, SnapshotSource } from '../../../src/tenancy/snapshot.js';
import { type PostgresServer, startPostgres } from '../../harness/postgres.js';

const admin = { actor: 'ops', role: 'admin' };
let server: PostgresServer;
let store: Store;

before(async () => {
  server = await startPostgres();
  store = await openStore({ url: server.url, reconnectMinMs: 50, reconnectMaxMs: 300 });
  await migrate(store);
});
after(async () => {
  await store?.close();
  await server?.destroy();
});

test('while PostgreSQL is stopped the snapshot still answers; when it is back, the snapshot catches up', async () => {
  const repo = new TenancyRepository(store);
  await repo.createTenant(admin, { id: 'steady', name: 'Steady' });
  const { key, plaintext } = await repo.createKey(admin, 'steady', { name: 'k' });
  const errors: Error[] = [];
  const source = new SnapshotSource(store, {
    retryMinMs: 50,
    retryMaxMs: 300,
    onError: (e) => errors.push(e),
  });
  await source.start();
  try {
    assert.ok(lookupKey(source.current, plaintext, Date.now()).ok);
    const before = source.current;

    await server.stop();
    // A reload against a dead server fails quietly: the old snapshot stays, marked stale.
    await source.reload();
    assert.equal(source.stale, true);
    assert.ok(errors.length > 0);
    assert.equal(source.current, before);
    const during = lookupKey(source.current, plaintext, Date.now());
    assert.ok(during.ok);
    assert.equal(during.key.id, key.id);
    // Writes fail, of course, with an error rather than a hang.
    await assert.rejects(repo.createTenant(admin, { id: 'nope', name: 'N' }));

    await server.start();
    // A change made after the restart reaches the snapshot (through the resync after the LISTEN
    // connection came back, or the notification itself once it is listening again).
    await repo.revokeKey(admin, key.id);
    await source.until((s) => s.keysById.get(key.id)?.revoked === true, 5000);
    assert.equal(source.stale, false);
    assert.equal((lookupKey(source.current, plaintext, Date.now()) as { reason: string }).reason, 'revoked');
  } finally {
    await source.close();
  }
});

test('a SnapshotSource cannot start without its store: start rejects, nothing is left running', async () => {
  await server.stop();
  try {
    const other = await openStore({ url: server.url }).then(
      (s) => s,
      (e: Error) => e,
    );
    assert.ok(other instanceof Error, 'openStore should fail while the server is down');
    const source = new SnapshotSource(store);
    await assert.rejects(source.start());
    assert.equal(source.current.version, 0);
  } finally {
    await server.start();
  }
});
