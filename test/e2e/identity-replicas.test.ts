/**
 * Two gateways on one real PostgreSQL, as two replicas would be: a key created or revoked through
 * one is honoured by the other within a second; with PostgreSQL stopped, both keep serving from
 * their snapshots; when it is back, changes flow again without a restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, httpRequest } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { type PostgresServer, startPostgres } from '../harness/postgres.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'security' };

describe('replicas sharing one PostgreSQL', () => {
  let pg: PostgresServer;
  let up: TestUpstream;
  let a: TestGateway;
  let b: TestGateway;

  before(async () => {
    // Its own server (not the suite's shared one): this test stops it.
    pg = await startPostgres();
    up = await startUpstream();
    const config = {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      store: pg.url,
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [{ name: 'api', match: { path: { prefix: '/' } }, upstream: 'up', auth: { apiKey: true } }],
    };
    a = await startGateway(config);
    b = await startGateway(config);
    await a.gw.tenancy!.createTenant(who, { id: 'acme', name: 'Acme' });
  });
  after(async () => {
    await a?.stop();
    await b?.stop();
    await up?.close();
    await pg?.destroy();
  });

  const status = async (g: TestGateway, key: string) =>
    (await httpRequest(`${g.url}/x`, { headers: { 'x-api-key': key } })).status;

  test('a key created on one replica works on the other within a second; revoked, within a second', async () => {
    const t0 = Date.now();
    const { key, plaintext } = await a.gw.tenancy!.createKey(who, 'acme', { name: 'k' });
    await eventually(async () => (await status(b, plaintext)) === 200, 'the key on replica b', 1000);
    const seen = Date.now() - t0;
    assert.ok(seen < 1000, `visible after ${seen} ms`);
    await b.gw.tenancy!.revokeKey(who, key.id);
    const t1 = Date.now();
    await eventually(async () => (await status(a, plaintext)) === 401, 'the revocation on replica a', 1000);
    assert.ok(Date.now() - t1 < 1000);
  });

  test('with PostgreSQL stopped both replicas serve from their snapshots; after it is back, changes flow again', async () => {
    const { plaintext } = await a.gw.tenancy!.createKey(who, 'acme', { name: 'outage' });
    await eventually(async () => (await status(b, plaintext)) === 200, 'the key on replica b');
    await pg.stop();
    for (let i = 0; i < 20; i++) {
      assert.equal(await status(a, plaintext), 200);
      assert.equal(await status(b, plaintext), 200);
    }
    // Writes fail while the store is down (the admin API answers an error; nothing is half-done).
    await assert.rejects(a.gw.tenancy!.createKey(who, 'acme', { name: 'during' }));
    await pg.start();
    // The LISTEN connection reconnects (with back-off) and the replicas resync.
    const later = await eventually(
      () => a.gw.tenancy!.createKey(who, 'acme', { name: 'after' }).catch(() => undefined),
      'the store to accept writes again',
      15_000,
    );
    await eventually(
      async () => (await status(b, later.plaintext)) === 200,
      'the new key on replica b',
      15_000,
    );
    const m = (await httpRequest(`${b.adminUrl}/metrics`)).text;
    assert.match(m, /sluice_tenancy_snapshot\{what="keys"\} [1-9]/);
  });
});
