/**
 * Data rights in the audit log, end to end on PGlite and PostgreSQL: a gateway with `audit` on
 * (behind a trusted proxy, so each caller has its own address) records auth failures of two
 * principals and one anonymous address, and an admin change. After integration no audit table holds
 * an identifier or address in clear; a data subject's export (CLI) holds exactly that subject's
 * entries and verifies; after `sluice audit erase` (and the API's erase) the key row is gone, the
 * exports show the subject as erased, and the whole log still verifies with every proof.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Store } from '../../src/store/store.js';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { auditConfig, auditSigner } from '../harness/audit.js';
import { eventually, runCli } from '../harness/flow.js';
import { testDatabase } from '../harness/postgres.js';

const ORIGIN = 'sluice.test/audit';
const AUDIT_TABLES = [
  'audit_outbox',
  'audit_entries',
  'audit_checkpoints',
  'audit_tree',
  'audit_subject_keys',
  'audit_subject_lookup',
];

interface Entry {
  index: number;
  entry: Record<string, unknown>;
  opened?: Record<string, unknown>;
  proof: string[];
}
interface Bundle {
  entries: Entry[];
  checkpoints: string[];
  subject?: { id: string; pseudonym: string };
}

for (const kind of ['pglite', 'postgres'] as const)
  describe(`erasure and the data subject's export (${kind})`, () => {
    let a: AdminGateway;
    let store: Store;
    let drop: (() => Promise<void>) | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-erasure-'));
    const signer = auditSigner(ORIGIN);
    const vkey = signer.vkey;
    const cli = (role: 'auditor' | 'admin', args: string[]) =>
      runCli(['audit', ...args], {
        env: { SLUICE_ADMIN_TOKEN: ROLE_TOKENS[role], SLUICE_ADMIN_URL: a.g.adminUrl },
      });

    before(async () => {
      let url = 'memory://';
      // PostgreSQL with a KEK (keys wrapped), PGlite without (keys stored unwrapped, with a warning).
      const env: NodeJS.ProcessEnv = { ...signer.env };
      if (kind === 'postgres') {
        const db = await testDatabase();
        url = db.url;
        drop = db.drop;
        env.SLUICE_AUDIT_SUBJECT_KEK = randomBytes(32).toString('hex');
      }
      a = await startAdminGateway({
        store: url,
        env,
        config: {
          listen: { host: '127.0.0.1', port: 0, trustedProxies: ['127.0.0.1/32'] },
          audit: auditConfig(ORIGIN, dir, { checkpoint: { entries: 0, every: '100ms' } }),
        },
      });
      store = a.g.gw.identity!.store;
    });
    after(async () => {
      await a?.stop();
      await drop?.();
      rmSync(dir, { recursive: true, force: true });
    });

    async function auditText(): Promise<string> {
      const parts: string[] = [];
      for (const t of AUDIT_TABLES)
        for (const r of await store.query<{ t: string }>(`SELECT (x.*)::text AS t FROM ${t} x`))
          parts.push(r.t);
      return parts.join('\n');
    }

    async function call(from: string, key?: string): Promise<void> {
      const headers: Record<string, string> = { 'x-forwarded-for': from };
      if (key) headers['x-api-key'] = key;
      const r = await fetch(`${a.g.url}/keyed/x`, { headers });
      assert.equal(r.status, 401);
      await r.arrayBuffer();
    }

    /** The admin export once the latest checkpoint covers at least n entries. */
    async function exportWith(n: number): Promise<Bundle> {
      const file = join(dir, 'all.json');
      return eventually(
        async () => {
          const r = await cli('auditor', ['export', '--out', file]);
          assert.equal(r.code, 0, r.err);
          const b = JSON.parse(readFileSync(file, 'utf8')) as Bundle;
          return b.entries.length >= n && b;
        },
        `${n} audit entries under a checkpoint`,
        15_000,
      );
    }

    async function verifies(file: string, entries: number): Promise<void> {
      const v = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
      assert.equal(v.code, 0, v.out + v.err);
      assert.match(v.out, new RegExp(`^ok: ${entries} entries`));
    }

    it('seals at integration, exports one subject exactly, erases it unreadable, and every proof still verifies', async () => {
      // What this test sends: 3 failures of alice (198.51.100.20), 2 anonymous (198.51.100.21),
      // 2 of bob (198.51.100.22), one admin change by operator-user.
      for (let i = 0; i < 3; i++) await call('198.51.100.20', 'sk_alice7_0123456789abcdef');
      for (let i = 0; i < 2; i++) await call('198.51.100.21');
      for (let i = 0; i < 2; i++) await call('198.51.100.22', 'sk_bob7_0123456789abcdef');
      const t = await a.call('POST', '/admin/v1/tenants', {
        role: 'operator',
        body: { id: 'acme', name: 'Acme' },
      });
      assert.equal(t.status, 201, t.text);

      const all = await exportWith(8);
      assert.equal(all.entries.length, 8);
      const text = await auditText();
      for (const clear of ['alice7', 'bob7', '198.51.100.2', 'operator-user'])
        assert.ok(!text.includes(clear), `"${clear}" in an audit table after integration`);
      await verifies(join(dir, 'all.json'), 8);
      // The export opens what it can: the leaf data stays sealed beside it.
      const principals = all.entries.map((e) => e.opened?.principal ?? null).filter((p) => p !== null);
      assert.deepEqual(principals.sort(), ['alice7', 'alice7', 'alice7', 'bob7', 'bob7']);
      const change = all.entries.find((e) => e.entry.type === 'admin_change')!;
      assert.equal(change.opened?.actor, 'operator-user');
      assert.equal(typeof (change.entry.actor as { sealed: string }).sealed, 'string');

      // A data subject's export: exactly its entries, opened, each proven.
      const aliceFile = join(dir, 'alice.json');
      const ex = await cli('auditor', ['subject-export', 'principal:alice7', '--out', aliceFile]);
      assert.equal(ex.code, 0, ex.err);
      const alice = JSON.parse(readFileSync(aliceFile, 'utf8')) as Bundle;
      assert.equal(alice.entries.length, 3);
      for (const e of alice.entries) {
        assert.equal(e.opened?.principal, 'alice7');
        assert.equal(e.opened?.client, '198.51.100.20');
      }
      await verifies(aliceFile, 3);
      const anon = await a.call(
        'GET',
        `/admin/v1/audit/subjects/${encodeURIComponent('ip:198.51.100.21')}/export`,
        {
          role: 'auditor',
        },
      );
      assert.equal(anon.status, 200, anon.text);
      const anonBundle = anon.body as Bundle;
      assert.deepEqual(
        anonBundle.entries.map((e) => [e.opened?.client, e.opened?.principal]),
        [
          ['198.51.100.21', undefined],
          ['198.51.100.21', undefined],
        ],
      );

      // Only admin erases.
      const refused = await cli('auditor', ['erase', 'principal:alice7']);
      assert.equal(refused.code, 1);
      assert.match(refused.err, /403/);
      const erased = await cli('admin', ['erase', 'principal:alice7', '--json']);
      assert.equal(erased.code, 0, erased.err);
      const pseudonym = (JSON.parse(erased.out) as { pseudonym: string }).pseudonym;
      assert.equal(pseudonym, alice.subject!.pseudonym);
      assert.deepEqual(
        await store.query('SELECT 1 FROM audit_subject_keys WHERE pseudonym = $1', [pseudonym]),
        [],
      );
      const api = await a.call(
        'POST',
        `/admin/v1/audit/subjects/${encodeURIComponent('ip:198.51.100.21')}/erase`,
        {
          role: 'admin',
        },
      );
      assert.equal(api.status, 200, api.text);
      const anonPseudonym = (api.body as { pseudonym: string }).pseudonym;
      assert.equal(anonPseudonym, anonBundle.subject!.pseudonym);

      // Two subject_erased entries, naming only the pseudonyms.
      const after = await exportWith(10);
      const records = after.entries.filter((e) => e.entry.type === 'subject_erased');
      assert.deepEqual(records.map((e) => e.entry.subject).sort(), [pseudonym, anonPseudonym].sort());
      for (const r of records) assert.equal(r.opened?.actor, 'admin-user');
      await verifies(join(dir, 'all.json'), 10);
      // The first eight leaves are the ones exported before: the erasure changed no leaf.
      assert.deepEqual(
        after.entries.slice(0, 8).map((e) => e.entry),
        all.entries.map((e) => e.entry),
      );
      const gone = (p: string) => ({ erased: p });
      const aliceAfter = after.entries.filter((e) =>
        (e.entry.subjects as string[] | undefined)?.includes(pseudonym),
      );
      assert.equal(aliceAfter.length, 3);
      for (const e of aliceAfter) {
        assert.deepEqual(e.opened?.principal, gone(pseudonym));
        assert.deepEqual(e.opened?.client, gone(pseudonym));
      }
      assert.equal(after.entries.filter((e) => e.opened?.principal === 'bob7').length, 2);
      const text2 = await auditText();
      for (const clear of ['alice7', '198.51.100.20', '198.51.100.21', 'admin-user'])
        assert.ok(!text2.includes(clear), `"${clear}" in an audit table after the erasure`);
      const again = await cli('auditor', ['subject-export', 'principal:alice7', '--out', aliceFile]);
      assert.equal(again.code, 1);
      assert.match(again.err, /404/);
    });
  });
