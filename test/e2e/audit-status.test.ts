/**
 * GET /admin/v1/audit/status and its bounded check (src/audit/live-verify.ts) on a real gateway with
 * the audit log on: the whole log verified within the limits; with small limits only a window of
 * the latest entries, which still finds an entry modified or deleted inside it; a deletion outside
 * the window is the CLI's to find (`sluice audit verify --store`), and the report says which
 * indexes it covered.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { verifyLiveLog } from '../../src/audit/live-verify.js';
import { AuditLogStore } from '../../src/audit/log-store.js';
import { type AdminGateway, startAdminGateway } from '../harness/admin.js';
import { auditConfig, auditSigner } from '../harness/audit.js';
import { eventually } from '../harness/flow.js';

const ORIGIN = 'sluice.test/audit-status';
const ENTRIES = 8;

describe('the audit log status, verified live and bounded', () => {
  let a: AdminGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-status-'));
  const { env, vkey } = auditSigner(ORIGIN);

  before(async () => {
    a = await startAdminGateway({
      env,
      config: { audit: auditConfig(ORIGIN, dir) },
    });
    for (let i = 0; i < ENTRIES; i++) {
      const r = await a.call('POST', '/admin/v1/tenants', {
        role: 'admin',
        body: { id: `t${i}`, name: 'T' },
      });
      assert.equal(r.status, 201, r.text);
    }
    await eventually(
      async () => {
        const r = await a.call('GET', '/admin/v1/audit/status', { role: 'auditor' });
        const s = r.body as { checkpoint: { treeSize: number } | null };
        return (s.checkpoint?.treeSize ?? 0) >= ENTRIES;
      },
      `a checkpoint over the ${ENTRIES} changes`,
      15_000,
    );
  });
  after(async () => {
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const store = () => a.g.gw.tenancy!.store;
  const live = (limits: { maxEntries?: number; maxCheckpoints?: number } = {}) =>
    verifyLiveLog({
      store: store(),
      log: new AuditLogStore(store(), { origin: ORIGIN, publicKeys: [vkey] }),
      origin: ORIGIN,
      trustedKeys: [vkey],
      ...limits,
    });

  it('verifies the whole log within the limits, with the checkpoint signed by the pinned key', async () => {
    const r = await a.call('GET', '/admin/v1/audit/status', { role: 'auditor' });
    assert.equal(r.status, 200, r.text);
    const s = r.body as Record<string, unknown> & {
      checkpoint: { treeSize: number; origin: string; signatureVerified: boolean; verifiedBy: string[] };
    };
    assert.equal(s.state, 'verified');
    assert.equal(s.scope, 'whole');
    assert.equal(s.from, 0);
    assert.equal(s.to, s.checkpoint.treeSize);
    assert.equal(s.entriesVerified, s.checkpoint.treeSize);
    assert.equal(s.checkpoint.origin, ORIGIN);
    assert.equal(s.checkpoint.signatureVerified, true);
    assert.deepEqual(s.checkpoint.verifiedBy, [vkey]);
    assert.deepEqual(s.problems, []);
  });

  it('another key pinned: the checkpoint is not verified and the status fails', async () => {
    const other = auditSigner(ORIGIN).vkey;
    const s = await verifyLiveLog({
      store: store(),
      log: new AuditLogStore(store(), { origin: ORIGIN, publicKeys: [other] }),
      origin: ORIGIN,
      trustedKeys: [other],
    });
    assert.equal(s.state, 'failed');
    assert.equal(s.checkpoint?.signatureVerified, false);
    assert.ok(s.problems.some((p) => p.kind === 'forged-checkpoint'));
  });

  it('with small limits verifies a window of the latest entries, and finds tampering inside it', async () => {
    const w = await live({ maxEntries: 3, maxCheckpoints: 2 });
    assert.equal(w.state, 'verified', JSON.stringify(w.problems));
    assert.equal(w.scope, 'window');
    assert.equal(w.to - w.from, 3);
    assert.equal(w.entriesVerified, 3);
    assert.equal(w.checkpointsVerified, 2);

    const inside = w.to - 2;
    await store().query(
      `UPDATE audit_entries SET entry = jsonb_set(entry, '{reason}', '"edited"') WHERE seq = $1`,
      [inside],
    );
    const m = await live({ maxEntries: 3, maxCheckpoints: 2 });
    assert.equal(m.state, 'failed');
    assert.ok(
      m.problems.some((p) => p.kind === 'modified' && p.index === inside),
      JSON.stringify(m.problems),
    );

    await store().query('DELETE FROM audit_entries WHERE seq = $1', [inside]);
    const d = await live({ maxEntries: 3, maxCheckpoints: 2 });
    assert.equal(d.state, 'failed');
    assert.ok(
      d.problems.some((p) => p.kind === 'removed' && p.index === inside),
      JSON.stringify(d.problems),
    );

    // The whole log (no limits) names it too, as the CLI would.
    const whole = await live();
    assert.equal(whole.scope, 'whole');
    assert.ok(whole.problems.some((p) => p.kind === 'removed' && p.index === inside));
  });
});
