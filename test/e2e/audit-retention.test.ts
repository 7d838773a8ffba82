/**
 * Proofs and retention end to end, through real gateways and the CLI: `sluice audit proof` fetches
 * inclusion (by index and by event id) and consistency proofs from the admin API and verifies them
 * against the pinned key (and refuses under another key); a gateway whose `audit.retention` has
 * tiny durations archives and prunes on its own schedule, every archive file verifies offline with
 * `sluice audit verify --bundle` reporting the redacted auth failures as redacted, and a proof of an
 * archived index is refused as archived.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { auditConfig, auditSigner } from '../harness/audit.js';
import { eventually, runCli } from '../harness/flow.js';

const ORIGIN = 'sluice.test/audit';

async function auditGateway(dir: string, audit: Record<string, unknown>) {
  const signer = auditSigner(ORIGIN);
  const a = await startAdminGateway({
    store: 'memory://',
    env: signer.env,
    config: { audit: auditConfig(ORIGIN, dir, audit) },
  });
  return { a, vkey: signer.vkey };
}

async function traffic(a: AdminGateway, failures: number, tenants: string[]): Promise<void> {
  for (let i = 0; i < failures; i++) {
    const r = await fetch(`${a.g.url}/keyed/x`);
    assert.equal(r.status, 401);
    await r.arrayBuffer();
  }
  for (const id of tenants) {
    const r = await a.call('POST', '/admin/v1/tenants', { role: 'operator', body: { id, name: id } });
    assert.equal(r.status, 201, r.text);
  }
}

const envOf = (a: AdminGateway) => ({
  SLUICE_ADMIN_TOKEN: ROLE_TOKENS.auditor,
  SLUICE_ADMIN_URL: a.g.adminUrl,
});

describe('sluice audit proof', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-proof-'));
  let a: AdminGateway | undefined;
  after(async () => {
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('verifies inclusion by index and event id and consistency against the pinned key; another key fails', async () => {
    const g = await auditGateway(dir, { checkpoint: { entries: 1, every: '1h' } });
    a = g.a;
    await traffic(a, 4, ['acme', 'globex']);
    const cps = await eventually(
      async () => {
        const r = await a!.call('GET', '/admin/v1/audit/checkpoints', { role: 'auditor' });
        const sizes = (r.body as { checkpoints: { treeSize: number }[] }).checkpoints.map((c) => c.treeSize);
        return sizes.includes(6) && sizes;
      },
      'a checkpoint of the six entries',
      15_000,
    );
    const env = envOf(a);
    const bySeq = await runCli(['audit', 'proof', '--seq', '4', '--key', g.vkey], { env });
    assert.equal(bySeq.code, 0, bySeq.out + bySeq.err);
    assert.match(bySeq.out, /^verified: entry 4 is in the log of size 6/);

    const exported = await a.call('GET', '/admin/v1/audit/export', { role: 'auditor' });
    const change = (
      exported.body as { entries: { index: number; entry: { id: string; type: string } }[] }
    ).entries.find((e) => e.entry.type === 'admin_change')!;
    const byEvent = await runCli(
      ['audit', 'proof', '--event', change.entry.id, '--tree-size', '6', '--key', g.vkey],
      { env },
    );
    assert.equal(byEvent.code, 0, byEvent.out + byEvent.err);
    assert.match(byEvent.out, new RegExp(`^verified: entry ${change.index} is in the log of size 6`));

    const from = cps[0]!;
    const cons = await runCli(['audit', 'proof', '--from', String(from), '--to', '6', '--key', g.vkey], {
      env,
    });
    assert.equal(cons.code, 0, cons.out + cons.err);
    assert.match(cons.out, new RegExp(`^verified: the log of size 6 extends the one of size ${from}`));

    const other = auditSigner(ORIGIN).vkey;
    const forged = await runCli(['audit', 'proof', '--seq', '4', '--key', other], { env });
    assert.equal(forged.code, 1, forged.out);
    assert.match(forged.out, /^FAILED: the checkpoint does not verify under the pinned key/);
    const usage = await runCli(['audit', 'proof', '--seq', '4'], { env });
    assert.equal(usage.code, 2);
  });
});

describe('audit retention on a schedule', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-retention-'));
  const archive = join(dir, 'archive');
  let a: AdminGateway | undefined;
  after(async () => {
    await a?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('archives and prunes; the archives verify offline with redacted entries reported; archived proofs are refused', async () => {
    const g = await auditGateway(dir, {
      checkpoint: { entries: 1, every: '1h' },
      retention: { hot: '1ms', every: '100ms', types: { auth_failed: '1ms' }, archive: { dir: archive } },
    });
    a = g.a;
    await traffic(a, 5, ['acme', 'globex']);
    // Seven entries, a checkpoint after each: all archived once the job ran after the seventh.
    const files = await eventually(
      async () => {
        if (!existsSync(archive)) return false;
        const fs = readdirSync(archive).filter((f) => f.endsWith('.json'));
        const covered = fs
          .map((f) => Number(/-(\d+)\.json$/.exec(f)![1]))
          .reduce((x, y) => Math.max(x, y), 0);
        return covered >= 7 && fs.sort();
      },
      'archive files up to index 7',
      15_000,
    );
    let redacted = 0;
    for (const f of files) {
      const file = join(archive, f);
      const r = await runCli(['audit', 'verify', '--bundle', file, '--key', g.vkey]);
      assert.equal(r.code, 0, r.out + r.err);
      assert.match(r.out, /^ok: /);
      const bundle = JSON.parse(readFileSync(file, 'utf8')) as {
        entries: { redacted?: boolean; entry?: { type: string } }[];
      };
      const n = bundle.entries.filter((e) => e.redacted).length;
      redacted += n;
      if (n > 0) assert.match(r.out, new RegExp(`\\(${n} redacted\\)[\\s\\S]*redacted by retention`));
      // Admin changes keep the default 7 years: readable.
      for (const e of bundle.entries) if (!e.redacted) assert.equal(e.entry?.type, 'admin_change');
    }
    assert.equal(redacted, 5, 'the five auth failures are redacted');

    const proof = await runCli(['audit', 'proof', '--seq', '0', '--key', g.vkey], { env: envOf(a) });
    assert.equal(proof.code, 1, proof.out);
    assert.match(proof.err, /archived/);
    const r = await a.call('GET', '/admin/v1/audit/proof/inclusion?seq=0', { role: 'auditor' });
    assert.equal(r.status, 410);
    assert.equal((r.body as { code: string }).code, 'SLUICE-AUDIT-002');
    assert.ok((r.body as { minIndex: number }).minIndex >= 7);
  });
});
