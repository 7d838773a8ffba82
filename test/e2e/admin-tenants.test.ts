/**
 * Tenants and API keys managed through the admin API, seen from the data plane of the same gateway:
 * a key made through the API works at once, a suspended tenant is refused, a revoked key too; every
 * change is in the change log (paged) and on the event bus. The same suite on PGlite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AdminChangeEvent, GatewayEvent } from '../../src/telemetry/events.js';
import { type AdminGateway, startAdminGateway } from '../harness/admin.js';
import { eventually, httpRequest } from '../harness/flow.js';
import { STORE_KINDS, testDatabase } from '../harness/postgres.js';

interface Key {
  id: string;
  status: string;
  revokedAt: string | null;
}

for (const kind of STORE_KINDS) {
  describe(`tenants and keys through the admin API (${kind})`, () => {
    let a: AdminGateway;
    let drop: (() => Promise<void>) | undefined;
    const events: AdminChangeEvent[] = [];
    before(async () => {
      let store = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        store = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({ store });
      a.g.gw.events.on((e: GatewayEvent) => {
        if (e.type === 'admin_change') events.push(e);
      });
    });
    after(async () => {
      await a?.stop();
      await drop?.();
    });

    const keyed = (key: string) => httpRequest(`${a.g.url}/keyed/x`, { headers: { 'x-api-key': key } });

    test('key lifecycle: created through the API, used at once, refused while the tenant is suspended, refused once revoked', async () => {
      const t = await a.call('POST', '/admin/v1/tenants', {
        role: 'operator',
        body: { id: 'acme', name: 'Acme', region: 'eu', labels: { tier: 'gold' } },
      });
      assert.equal(t.status, 201, t.text);
      assert.equal(t.headers.get('location'), '/admin/v1/tenants/acme');

      const created = await a.call('POST', '/admin/v1/tenants/acme/keys', {
        role: 'security',
        body: { name: 'ci', scopes: ['read'] },
      });
      assert.equal(created.status, 201, created.text);
      assert.equal(created.headers.get('cache-control'), 'no-store');
      const { key, secret } = created.body as { key: Key & { prefix: string }; secret: string };
      assert.ok(secret.startsWith(key.prefix), 'the key starts with its printable prefix');
      assert.equal(key.status, 'active');

      // The listing shows metadata, never the secret (nor any part of it past the prefix).
      const list = await a.call('GET', '/admin/v1/tenants/acme/keys', { role: 'viewer' });
      assert.equal(list.status, 200);
      assert.deepEqual(
        (list.body as { keys: Key[] }).keys.map((k) => k.id),
        [key.id],
      );
      assert.ok(!list.text.includes(secret.slice(key.prefix.length)), 'the listing carries the secret');
      assert.ok(!/hash/i.test(list.text));

      await eventually(async () => (await keyed(secret)).status === 200, 'the new key works');

      assert.equal(
        (await a.call('POST', '/admin/v1/tenants/acme/suspend', { role: 'security' })).status,
        200,
      );
      const code = async (key: string) => {
        const r = await keyed(key);
        return `${r.status} ${r.status === 200 ? '' : JSON.parse(r.text).code}`;
      };
      await eventually(
        async () => (await code(secret)) === '403 SLUICE-TENANT-002',
        'a suspended tenant is refused',
      );

      const resumed = await a.call('POST', '/admin/v1/tenants/acme/resume', { role: 'security' });
      assert.equal((resumed.body as { status: string }).status, 'active');
      await eventually(async () => (await keyed(secret)).status === 200, 'resumed');

      const revoked = await a.call('DELETE', `/admin/v1/tenants/acme/keys/${key.id}`, { role: 'security' });
      assert.equal(revoked.status, 200, revoked.text);
      assert.equal((revoked.body as Key).status, 'revoked');
      assert.ok((revoked.body as Key).revokedAt);
      await eventually(
        async () => (await code(secret)) === '401 SLUICE-AUTH-007',
        'a revoked key is refused',
      );

      // A key id under another tenant's path is not found, and changes nothing.
      await a.call('POST', '/admin/v1/tenants', { role: 'operator', body: { id: 'globex', name: 'Globex' } });
      const other = await a.call('POST', '/admin/v1/tenants/globex/keys', {
        role: 'security',
        body: { name: 'g' },
      });
      const otherKey = (other.body as { key: Key }).key.id;
      const cross = await a.call('DELETE', `/admin/v1/tenants/acme/keys/${otherKey}`, { role: 'security' });
      assert.equal(cross.status, 404);
      assert.equal((cross.body as { code: string }).code, 'SLUICE-ADMIN-006');
      const still = await a.call('GET', '/admin/v1/tenants/globex/keys', { role: 'viewer' });
      assert.equal((still.body as { keys: Key[] }).keys[0]!.status, 'active');

      // Deleting a tenant takes its keys with it.
      const otherSecret = (other.body as { secret: string }).secret;
      await eventually(async () => (await keyed(otherSecret)).status === 200, 'globex key works');
      assert.equal((await a.call('DELETE', '/admin/v1/tenants/globex', { role: 'admin' })).status, 204);
      await eventually(async () => (await keyed(otherSecret)).status === 401, 'deleted with its tenant');
      assert.equal((await a.call('GET', '/admin/v1/tenants/globex/keys', { role: 'viewer' })).status, 404);
    });

    test('every change is recorded (who, role, what, before, after) and announced on the event bus', async () => {
      await a.call('POST', '/admin/v1/tenants', {
        role: 'operator',
        body: { id: 'initech', name: 'Initech' },
      });
      const patched = await a.call('PATCH', '/admin/v1/tenants/initech', {
        role: 'admin',
        body: { plan: 'pro', labels: { a: 'b' } },
      });
      assert.equal(patched.status, 200, patched.text);
      assert.equal((patched.body as { plan: string }).plan, 'pro');

      const log = await a.call('GET', '/admin/v1/changes?limit=1', { role: 'auditor' });
      const [last] = (log.body as { changes: Record<string, unknown>[] }).changes;
      assert.equal(last!.actor, 'admin-user');
      assert.equal(last!.role, 'admin');
      assert.equal(last!.action, 'tenant.update');
      assert.equal(last!.target, 'tenant:initech');
      assert.equal((last!.before as { plan: unknown }).plan, null);
      assert.equal((last!.after as { plan: unknown }).plan, 'pro');

      const e = events.at(-1)!;
      assert.equal(e.action, 'tenant.update');
      assert.equal(e.actor, 'admin-user');
      assert.equal(e.role, 'admin');
      assert.equal((e.before as { plan: unknown }).plan, null);
      assert.equal((e.after as { plan: unknown }).plan, 'pro');
      assert.deepEqual(
        events.slice(0, 4).map((x) => `${x.actor} ${x.action} ${x.target.split(':')[0]}`),
        [
          'operator-user tenant.create tenant',
          'security-user key.create key',
          'security-user tenant.suspend tenant',
          'security-user tenant.resume tenant',
        ],
      );
      // Nothing about a key's secret goes on the bus.
      for (const x of events) assert.ok(!/secret|hash/i.test(JSON.stringify(x)), JSON.stringify(x));
    });

    test('the change log pages newest first; following next visits every change once', async () => {
      const all = (
        (await a.call('GET', '/admin/v1/changes?limit=500', { role: 'auditor' })).body as {
          changes: { id: string }[];
          next: string | null;
        }
      ).changes.map((c) => c.id);
      assert.ok(all.length >= 10, `${all.length} changes`);
      const ids = all.map(Number);
      assert.deepEqual(
        ids,
        [...ids].sort((x, y) => y - x),
        'newest first',
      );
      const paged: string[] = [];
      let next: string | null = null;
      let pages = 0;
      do {
        const r = await a.call('GET', `/admin/v1/changes?limit=3${next ? `&before=${next}` : ''}`, {
          role: 'security',
        });
        assert.equal(r.status, 200, r.text);
        const body = r.body as { changes: { id: string }[]; next: string | null };
        assert.ok(body.changes.length <= 3);
        paged.push(...body.changes.map((c) => c.id));
        next = body.next;
        pages++;
      } while (next !== null && pages < 100);
      assert.deepEqual(paged, all);
      assert.equal(pages, Math.ceil(all.length / 3));
    });
  });
}
