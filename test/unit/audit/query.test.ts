/**
 * The audit query's filters on a store (PGlite and PostgreSQL): what each filter matches on a log
 * written here row by row (the expected ids are the test's own), and that on a log of 20 000 entries
 * every filter is answered from migration 009's indexes, never a scan of audit_entries.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type AuditQuery, pageStatement, queryAuditEntries } from '../../../src/audit/query.js';
import { migrate } from '../../../src/store/migrate.js';
import type { Store } from '../../../src/store/store.js';
import { STORE_KINDS, type TestStores, testStores } from '../../harness/postgres.js';

const N = 20_000;

/** The synthetic log: entry i's kind is fixed by i, so the test knows every answer. */
function entryOf(i: number): Record<string, unknown> {
  const at = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
  // Rare ones: every 1000th is acme's (admin change to a key of acme, or an auth failure of its key).
  if (i % 1000 === 7)
    return {
      id: `e${i}`,
      type: 'admin_change',
      at,
      actor: 'alice',
      role: 'security',
      action: 'key.create',
      target: `key:k${i}`,
      before: null,
      after: { id: `k${i}`, tenantId: 'acme' },
    };
  if (i % 1000 === 8)
    return { id: `e${i}`, type: 'auth_failed', at, principal: 'acme-key', reason: 'key-revoked' };
  if (i % 1000 === 9)
    return { id: `e${i}`, type: 'quota_exceeded', at, tenant: 'acme', quota: 'calls', route: 'r' };
  if (i % 1000 === 10)
    return {
      id: `e${i}`,
      type: 'admin_change',
      at,
      actor: 'bob',
      action: 'tenant.update',
      target: 'tenant:acme',
    };
  return {
    id: `e${i}`,
    type: 'auth_failed',
    at,
    principal: `p${i % 50}`,
    tenant: `t${i % 50}`,
    reason: 'missing',
  };
}

for (const kind of STORE_KINDS)
  describe(`audit query filters on ${kind}`, () => {
    let stores: TestStores;
    let store: Store;
    before(async () => {
      stores = await testStores(kind);
      store = await stores.open();
      await migrate(store);
      await store.query(`INSERT INTO tenants (id, name) VALUES ('acme', 'Acme')`);
      await store.query(
        `INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash) VALUES ('acme-key', 'acme', 'k', 'sk_acme-key_', $1)`,
        [createHash('sha256').update('x').digest()],
      );
      for (let from = 0; from < N; from += 2000) {
        const seqs: string[] = [];
        const entries: string[] = [];
        for (let i = from; i < Math.min(N, from + 2000); i++) {
          seqs.push(String(i));
          entries.push(JSON.stringify(entryOf(i)));
        }
        await store.query(
          `INSERT INTO audit_entries (seq, event_id, entry, leaf_hash)
           SELECT s::bigint, 'e' || s, j::jsonb, sha256(convert_to(j, 'UTF8')) FROM unnest($1::text[], $2::text[]) AS u(s, j)`,
          [seqs, entries],
        );
      }
      await store.query('ANALYZE audit_entries');
    });
    after(() => stores?.close());

    const ids = async (q: AuditQuery) => {
      const out: number[] = [];
      for (let after: number | undefined; ; ) {
        const page = await queryAuditEntries(store, { ...q, after, limit: 1000 });
        out.push(...page.entries.map((e) => e.seq));
        if (page.next === null) return out;
        after = Number(page.next);
      }
    };
    const expected = (pred: (i: number) => boolean) => [...Array(N).keys()].filter(pred);

    test('each filter matches what it says', async () => {
      const acme = (i: number) => [7, 8, 9, 10].includes(i % 1000);
      assert.deepEqual(await ids({ tenant: 'acme' }), expected(acme));
      assert.deepEqual(
        await ids({ tenant: 'acme', type: 'auth_failed' }),
        expected((i) => i % 1000 === 8),
      );
      assert.deepEqual(
        await ids({ actor: 'alice' }),
        expected((i) => i % 1000 === 7),
      );
      assert.deepEqual(
        await ids({ actor: 'acme-key' }),
        expected((i) => i % 1000 === 8),
      );
      assert.deepEqual(
        await ids({ type: 'quota_exceeded' }),
        expected((i) => i % 1000 === 9),
      );
      assert.deepEqual(
        (await ids({ tenant: 't3' })).length,
        expected((i) => !acme(i) && i % 50 === 3).length,
      );
      // Entry i is at 2026-01-01 + i s: [100 s, 200 s) is entries 100..199.
      assert.deepEqual(
        await ids({ since: '2026-01-01T00:01:40Z', until: '2026-01-01T00:03:20.000Z' }),
        expected((i) => i >= 100 && i < 200),
      );
      assert.deepEqual(await ids({ tenant: 'nobody' }), []);
    });

    test('every filter is answered from an index, never a scan of the log', async () => {
      const queries: [AuditQuery, RegExp][] = [
        [{ tenant: 'acme' }, /audit_entries_tenant|audit_entries_principal/],
        [{ type: 'quota_exceeded' }, /audit_entries_type/],
        [{ actor: 'alice' }, /audit_entries_actor/],
        [{ since: '2026-01-01T01:00:00Z', until: '2026-01-01T01:01:00Z' }, /audit_entries_entry_at/],
        [{ tenant: 'acme', type: 'admin_change', after: 5000 }, /audit_entries_(tenant|type|principal)/],
      ];
      for (const [q, index] of queries) {
        const { sql, params } = await pageStatement(store, q);
        const rows = await store.query<{ 'QUERY PLAN': string }>(`EXPLAIN ${sql}`, params);
        const plan = rows.map((r) => r['QUERY PLAN']).join('\n');
        assert.doesNotMatch(plan, /Seq Scan on audit_entries/, `${JSON.stringify(q)}\n${plan}`);
        assert.match(plan, index, `${JSON.stringify(q)}\n${plan}`);
      }
    });
  });
