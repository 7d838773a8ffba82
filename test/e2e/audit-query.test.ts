/**
 * Querying the audit log and exporting a tenant, end to end on PGlite and PostgreSQL: the test makes
 * known events (admin changes by two actors, auth failures of two tenants' keys, anonymous ones),
 * counts them itself, and checks that each filter of GET /admin/v1/audit/entries and `sluice audit
 * query` returns exactly those, that paging covers all of them once, and that `sluice tenants export`
 * holds the tenant's keys without their secrets, its audit entries (verified offline with the pinned
 * key) and nothing of the other tenant.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageRepository } from '../../src/tenancy/usage.js';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { auditConfig, auditSigner } from '../harness/audit.js';
import { eventually, runCli } from '../harness/flow.js';
import { testDatabase } from '../harness/postgres.js';

const ORIGIN = 'sluice.test/audit';

interface Entry {
  seq: number;
  integratedAt: string;
  entry: Record<string, unknown>;
  /** The entry with its sealed personal fields opened (the principal is sealed in `entry`). */
  opened?: Record<string, unknown>;
}
interface Page {
  entries: Entry[];
  next: string | null;
}

for (const kind of ['pglite', 'postgres'] as const)
  describe(`audit query and tenant export (${kind})`, () => {
    let a: AdminGateway;
    let drop: (() => Promise<void>) | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-query-'));
    const signer = auditSigner(ORIGIN);
    const vkey = signer.vkey;
    const env = () => ({ SLUICE_ADMIN_TOKEN: ROLE_TOKENS.auditor, SLUICE_ADMIN_URL: a.g.adminUrl });

    // What the test did, counted by the test.
    let acmeKey: { id: string; secret: string };
    let globexKey: { id: string; secret: string };
    let mid: string;
    const TOTAL = 14;

    const entries = async (query: string, role: 'auditor' | 'viewer' = 'auditor') => {
      const r = await a.call('GET', `/admin/v1/audit/entries${query}`, { role });
      assert.equal(r.status, 200, r.text);
      return r.body as Page;
    };
    /** Every page of a query (limit per page), asserting each page's size and order. */
    const allPages = async (query: string, limit: number) => {
      const seen: Entry[] = [];
      let after: string | null = null;
      for (let pages = 0; ; pages++) {
        assert.ok(pages < 100, 'paging does not end');
        const sep = query === '' ? '?' : '&';
        const page: Page = await entries(
          `${query}${sep}limit=${limit}${after === null ? '' : `&after=${after}`}`,
        );
        assert.ok(page.entries.length <= limit);
        if (page.next !== null) assert.equal(page.entries.length, limit);
        seen.push(...page.entries);
        if (page.next === null) return seen;
        after = page.next;
      }
    };

    before(async () => {
      let store = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        store = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({
        store,
        env: signer.env,
        config: {
          audit: auditConfig(ORIGIN, dir, { checkpoint: { entries: 4, every: '100ms' } }),
        },
      });

      // Admin changes by operator-user: 3 (acme 2, globex 1).
      const op = (method: string, path: string, body?: unknown) =>
        a.call(method, path, { role: 'operator', body });
      for (const id of ['acme', 'globex'])
        assert.equal((await op('POST', '/admin/v1/tenants', { id, name: id })).status, 201);
      assert.equal((await op('PATCH', '/admin/v1/tenants/acme', { plan: 'gold' })).status, 200);
      // Admin changes by security-user: 4 (acme 2: key created and revoked; globex 2: key, suspension).
      const sec = (method: string, path: string, body?: unknown) =>
        a.call(method, path, { role: 'security', body });
      const key = async (tenant: string) => {
        const r = await sec('POST', `/admin/v1/tenants/${tenant}/keys`, { name: `${tenant} key` });
        assert.equal(r.status, 201, r.text);
        const b = r.body as { key: { id: string }; secret: string };
        return { id: b.key.id, secret: b.secret };
      };
      acmeKey = await key('acme');
      globexKey = await key('globex');
      assert.equal((await sec('DELETE', `/admin/v1/tenants/acme/keys/${acmeKey.id}`)).status, 200);
      assert.equal((await sec('POST', '/admin/v1/tenants/globex/suspend')).status, 200);

      // Every admin change's time (the store's clock, same host) is before `mid`, every auth failure's after.
      mid = new Date().toISOString();
      const refused = async (headers: Record<string, string>, times: number) => {
        for (let i = 0; i < times; i++) {
          const r = await fetch(`${a.g.url}/keyed/x`, { headers });
          assert.ok(r.status === 401 || r.status === 403, `refused: ${r.status}`);
          await r.arrayBuffer();
        }
      };
      // The data plane's snapshot learns of the revocation and the suspension from a notification.
      await a.g.gw.identity!.snapshot.until(
        (s) =>
          s.keysById.get(acmeKey.id)?.revoked === true && s.tenantsById.get('globex')?.status === 'suspended',
      );
      // Auth failures: acme's revoked key 3, globex's key (tenant suspended) 2, no credentials 2.
      await refused({ 'x-api-key': acmeKey.secret }, 3);
      await refused({ 'x-api-key': globexKey.secret }, 2);
      await refused({}, 2);

      // Usage rows of both tenants, as the quota flush writes them.
      await new UsageRepository(a.g.gw.identity!.store).add([
        { tenantId: 'acme', metric: 'quota:calls', period: 'day', starts: '2026-11-24', used: 17 },
        { tenantId: 'globex', metric: 'quota:calls', period: 'day', starts: '2026-11-24', used: 99 },
      ]);

      // All 14 integrated, under a checkpoint (the export proves to the latest one).
      await eventually(
        async () => {
          const cps = await a.call('GET', '/admin/v1/audit/checkpoints', { role: 'auditor' });
          const list = (cps.body as { checkpoints: { treeSize: number }[] }).checkpoints;
          return list.at(-1)?.treeSize === TOTAL;
        },
        `a checkpoint of ${TOTAL} entries`,
        20_000,
      );
    });
    after(async () => {
      await a?.stop();
      await drop?.();
      rmSync(dir, { recursive: true, force: true });
    });

    it('the revocation and suspension took effect before the refused requests (the counts rest on it)', async () => {
      const all = await allPages('', 1000);
      const reasons = all.filter((e) => e.entry.type === 'auth_failed').map((e) => e.entry.reason);
      assert.deepEqual(reasons, [
        'key-revoked',
        'key-revoked',
        'key-revoked',
        'tenant-suspended',
        'tenant-suspended',
        'missing',
        'missing',
      ]);
    });

    it('each filter returns exactly the events the test made', async () => {
      const count = async (q: string) => (await allPages(q, 1000)).length;
      assert.equal(await count(''), TOTAL);
      assert.equal(await count('?type=admin_change'), 7);
      assert.equal(await count('?type=auth_failed'), 7);
      assert.equal(await count('?type=quota_exceeded'), 0);
      assert.equal(await count('?tenant=acme'), 2 + 2 + 3);
      assert.equal(await count('?tenant=globex'), 1 + 2 + 2);
      assert.equal(await count('?tenant=initech'), 0);
      assert.equal(await count('?tenant=acme&type=auth_failed'), 3);
      assert.equal(await count('?tenant=globex&type=admin_change'), 3);
      assert.equal(await count('?actor=operator-user'), 3);
      assert.equal(await count('?actor=security-user'), 4);
      assert.equal(await count(`?actor=${acmeKey.id}`), 3);
      assert.equal(await count(`?actor=${globexKey.id}`), 2);
      assert.equal(await count('?actor=security-user&tenant=globex'), 2);
      assert.equal(await count(`?until=${encodeURIComponent(mid)}`), 7);
      assert.equal(await count(`?since=${encodeURIComponent(mid)}`), 7);
      assert.equal(await count(`?since=${encodeURIComponent(mid)}&type=admin_change`), 0);
      assert.equal(await count(`?until=${encodeURIComponent(mid)}&actor=operator-user`), 3);

      const acme = await allPages('?tenant=acme', 1000);
      assert.deepEqual(
        acme.filter((e) => e.entry.type === 'admin_change').map((e) => e.entry.action),
        ['tenant.create', 'tenant.update', 'key.create', 'key.revoke'],
      );
      for (const e of acme.filter((x) => x.entry.type === 'auth_failed')) {
        // The log holds the principal sealed under its subject's key; the answer opens it.
        assert.equal((e.entry.principal as { sealed?: unknown }).sealed !== undefined, true);
        assert.equal(e.opened?.principal, acmeKey.id);
      }
    });

    it('paging by seq covers every entry once, in log order, whatever the page size', async () => {
      const all = (await entries('?limit=1000')).entries.map((e) => e.seq);
      assert.deepEqual(all, [...Array(TOTAL).keys()]);
      for (const limit of [1, 3, 4, 13, 14]) {
        const seqs = (await allPages('', limit)).map((e) => e.seq);
        assert.deepEqual(seqs, all, `limit ${limit}`);
      }
      const acme = (await allPages('?tenant=acme', 2)).map((e) => e.seq);
      assert.equal(new Set(acme).size, 7);
      assert.deepEqual(
        acme,
        [...acme].sort((x, y) => x - y),
      );
      // A cursor is a seq: the page after it starts past it.
      const page = await entries(`?after=${all[5]}&limit=2`);
      assert.deepEqual(
        page.entries.map((e) => e.seq),
        [all[6], all[7]],
      );
      assert.equal(page.next, String(all[7]));
    });

    it('limits and refusals: a limit above the maximum, a bad time, a viewer', async () => {
      for (const q of ['?limit=1001', '?limit=0', '?since=yesterday', '?after=-1', '?colour=red']) {
        const r = await a.call('GET', `/admin/v1/audit/entries${q}`, { role: 'auditor' });
        assert.equal(r.status, 400, `${q}: ${r.text}`);
      }
      const v = await a.call('GET', '/admin/v1/audit/entries', { role: 'viewer' });
      assert.equal(v.status, 403);
    });

    it('sluice audit query prints JSON lines; --all follows the pages; one page names the next cursor', async () => {
      const all = await runCli(['audit', 'query', '--tenant', 'globex', '--limit', '2', '--all'], {
        env: env(),
      });
      assert.equal(all.code, 0, all.err);
      const lines = all.out.trim().split('\n');
      assert.equal(lines.length, 5);
      const parsed = lines.map((l) => JSON.parse(l) as Entry);
      assert.equal(new Set(parsed.map((e) => e.seq)).size, 5);

      const one = await runCli(['audit', 'query', '--type', 'auth_failed', '--limit', '3'], { env: env() });
      assert.equal(one.code, 0, one.err);
      assert.equal(one.out.trim().split('\n').length, 3);
      const next = /^next: (\d+)$/m.exec(one.err)?.[1];
      assert.ok(next, one.err);
      const rest = await runCli(['audit', 'query', '--type', 'auth_failed', '--after', next, '--all'], {
        env: env(),
      });
      assert.equal(rest.code, 0, rest.err);
      assert.equal(rest.out.trim().split('\n').length, 4);

      const until = await runCli(['audit', 'query', '--until', mid, '--actor', 'security-user', '--all'], {
        env: env(),
      });
      assert.equal(until.out.trim().split('\n').length, 4);
    });

    it('sluice tenants export: the tenant, its keys without secrets, usage, changes, audit entries; verifies offline; nothing of the other tenant', async () => {
      const file = join(dir, 'acme.json');
      const r = await runCli(['tenants', 'export', 'acme', '--out', file], { env: env() });
      assert.equal(r.code, 0, r.err);
      const text = readFileSync(file, 'utf8');
      // No secret, whole or in part, and nothing of globex.
      const secretPart = acmeKey.secret.slice(acmeKey.secret.lastIndexOf('_') + 1);
      assert.ok(secretPart.length >= 20);
      assert.equal(text.includes(secretPart), false, 'the key secret is in the archive');
      assert.equal(text.includes(globexKey.secret.slice(globexKey.secret.lastIndexOf('_') + 1)), false);
      assert.equal(text.includes('globex'), false, 'the other tenant is named');
      assert.equal(text.includes(globexKey.id), false, "the other tenant's key is named");
      assert.equal(/hash/i.test(JSON.stringify(JSON.parse(text).keys)), false);

      const archive = JSON.parse(text) as {
        format: string;
        tenant: { id: string; plan: string };
        keys: { id: string; status: string }[];
        usage: { metric: string; used: number }[];
        changes: { action: string }[];
        audit: { complete: boolean; entries: { index: number; entry: Record<string, unknown> }[] };
      };
      assert.equal(archive.format, 'sluice-tenant-export/v1');
      assert.equal(archive.tenant.id, 'acme');
      assert.equal(archive.tenant.plan, 'gold');
      assert.deepEqual(
        archive.keys.map((k) => [k.id, k.status]),
        [[acmeKey.id, 'revoked']],
      );
      assert.deepEqual(
        archive.usage.map((u) => [u.metric, u.used]),
        [['quota:calls', 17]],
      );
      assert.deepEqual(
        archive.changes.map((c) => c.action),
        ['tenant.create', 'tenant.update', 'key.create', 'key.revoke'],
      );
      assert.equal(archive.audit.complete, false);
      assert.equal(archive.audit.entries.length, 7);

      const ok = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
      assert.equal(ok.code, 0, ok.out + ok.err);
      assert.match(ok.out, /^ok: 7 entries/);

      // One audit entry of the archive edited: named.
      archive.audit.entries[1]!.entry.action = 'tenant.delete';
      writeFileSync(file, JSON.stringify(archive));
      const bad = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
      assert.equal(bad.code, 1, bad.out);
      assert.match(bad.out, new RegExp(`^ {2}modified at index ${archive.audit.entries[1]!.index}:`, 'm'));
    });

    it('the export API: auditor and admin may, others not; an unknown tenant is 404', async () => {
      for (const role of ['auditor', 'admin'] as const) {
        const r = await a.call('GET', '/admin/v1/tenants/globex/export', { role });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers.get('cache-control'), 'no-store');
        const b = r.body as { keys: unknown[]; audit: { entries: unknown[] } };
        assert.equal(b.keys.length, 1);
        assert.equal(b.audit.entries.length, 5);
        assert.equal(r.text.includes('acme'), false);
      }
      for (const role of ['viewer', 'operator', 'security'] as const)
        assert.equal((await a.call('GET', '/admin/v1/tenants/globex/export', { role })).status, 403);
      assert.equal((await a.call('GET', '/admin/v1/tenants/nobody/export', { role: 'auditor' })).status, 404);
    });
  });
