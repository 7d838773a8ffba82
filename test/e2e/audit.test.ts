/**
 * The audit log end to end: a gateway with `audit` on records auth failures (bus → fsynced outbox →
 * store) and admin changes (from their own transaction), the sequencer signs checkpoints, `sluice
 * audit export` fetches a bundle through the admin API and `sluice audit verify` checks it offline
 * with the pinned key; a tampered bundle (one entry modified, one deleted) fails with the index named.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatVkey } from '../../src/audit/checkpoint.js';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { eventually, runCli } from '../harness/flow.js';
import { testDatabase } from '../harness/postgres.js';

const ORIGIN = 'sluice.test/audit';

for (const kind of ['pglite', 'postgres'] as const)
  describe(`the audit log, exported and verified (${kind})`, () => {
    let a: AdminGateway;
    let drop: (() => Promise<void>) | undefined;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-e2e-'));
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const vkey = formatVkey(ORIGIN, publicKey);

    before(async () => {
      let store = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        store = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({
        store,
        env: { SLUICE_AUDIT_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
        config: {
          audit: {
            enabled: true,
            origin: ORIGIN,
            outbox: { dir: join(dir, 'outbox') },
            checkpoint: { entries: 4, every: '100ms' },
          },
        },
      });
    });
    after(async () => {
      await a?.stop();
      await drop?.();
      rmSync(dir, { recursive: true, force: true });
    });

    it('records auth failures and admin changes; the export verifies with the pinned key; tampering is named', async () => {
      for (let i = 0; i < 5; i++) {
        const r = await fetch(`${a.g.url}/keyed/x`);
        assert.equal(r.status, 401);
        await r.arrayBuffer();
      }
      for (const id of ['acme', 'globex']) {
        const r = await a.call('POST', '/admin/v1/tenants', { role: 'operator', body: { id, name: id } });
        assert.equal(r.status, 201, r.text);
      }
      const cps = await a.call('GET', '/admin/v1/audit/checkpoints', { role: 'auditor' });
      assert.equal(cps.status, 200);
      assert.deepEqual((cps.body as { publicKeys: string[] }).publicKeys, [vkey]);

      const file = join(dir, 'bundle.json');
      const env = { SLUICE_ADMIN_TOKEN: ROLE_TOKENS.auditor, SLUICE_ADMIN_URL: a.g.adminUrl };
      // Seven events: the latest checkpoint covers all of them once the sequencer caught up.
      const bundle = await eventually(
        async () => {
          const r = await runCli(['audit', 'export', '--out', file], { env });
          assert.equal(r.code, 0, r.err);
          const b = JSON.parse(readFileSync(file, 'utf8')) as {
            entries: { entry: Record<string, unknown> }[];
          };
          return b.entries.length >= 7 && b;
        },
        'seven audit entries under a checkpoint',
        15_000,
      );
      const types = bundle.entries.map((e) => e.entry.type);
      assert.equal(types.filter((t) => t === 'auth_failed').length, 5);
      assert.deepEqual(
        bundle.entries.filter((e) => e.entry.type === 'admin_change').map((e) => e.entry.target),
        ['tenant:acme', 'tenant:globex'],
      );

      const ok = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
      assert.equal(ok.code, 0, ok.out + ok.err);
      assert.match(ok.out, /^ok: 7 entries/);

      // One entry modified.
      const modified = structuredClone(bundle) as typeof bundle;
      modified.entries[3]!.entry.reason = 'edited';
      writeFileSync(file, JSON.stringify(modified));
      const m = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
      assert.equal(m.code, 1, m.out);
      assert.match(m.out, /^ {2}modified at index 3:/m);

      // One entry deleted.
      const removed = structuredClone(bundle) as typeof bundle;
      removed.entries.splice(5, 1);
      writeFileSync(file, JSON.stringify(removed));
      const d = await runCli(['audit', 'verify', '--bundle', file, '--key', vkey]);
      assert.equal(d.code, 1, d.out);
      assert.match(d.out, /^ {2}removed at index 5:/m);

      // Another key pinned: every checkpoint is refused.
      const other = formatVkey(ORIGIN, generateKeyPairSync('ed25519').publicKey);
      writeFileSync(file, JSON.stringify(bundle));
      const f = await runCli(['audit', 'verify', '--bundle', file, '--key', other]);
      assert.equal(f.code, 1);
      assert.match(f.out, /forged-checkpoint/);
    });
  });
