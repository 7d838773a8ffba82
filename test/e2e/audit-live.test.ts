/**
 * `sluice audit verify --store`: an auditor checks the live database itself, with no Sluice server in
 * between, and every kind of tampering someone with write access to the database could do is named:
 * an entry modified, deleted, inserted or two reordered, the log truncated, a checkpoint forged, and
 * the whole store rolled back to an earlier copy (caught against a checkpoint published before).
 *
 * The log is made by a real gateway (auth failures through the outbox and the sequencer, on
 * PostgreSQL); each tampering is done with SQL on its own copy of the database (CREATE DATABASE …
 * TEMPLATE), so the cases are independent. The embedded store is checked the same way on a PGlite
 * directory once its gateway stopped (PGlite is one process's database).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateNoteSigner, parseCheckpoint, signCheckpoint } from '../../src/audit/checkpoint.js';
import { PgliteStore } from '../../src/store/pglite.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { Store } from '../../src/store/store.js';
import { type AdminGateway, startAdminGateway } from '../harness/admin.js';
import { auditConfig, auditSigner } from '../harness/audit.js';
import { eventually, runCli } from '../harness/flow.js';
import { copyDatabase, type TestDatabase, testDatabase } from '../harness/postgres.js';

const ORIGIN = 'sluice.test/live-audit';
const SIGNER = auditSigner(ORIGIN);
const VKEY = SIGNER.vkey;

/** A gateway on `store` recording auth failures, a checkpoint every 3 entries (and every 100 ms). */
function gateway(store: string, dir: string): Promise<AdminGateway> {
  return startAdminGateway({
    store,
    env: SIGNER.env,
    config: { audit: auditConfig(ORIGIN, dir, { checkpoint: { entries: 3, every: '100ms' } }) },
  });
}

/** `n` refused requests (401, each an auth_failed entry); resolves once the latest checkpoint covers `total`. */
async function refuse(a: AdminGateway, n: number, total: number): Promise<string> {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${a.g.url}/keyed/x`, { headers: { 'x-api-key': `sk_nope_${i}` } });
    assert.equal(r.status, 401);
    await r.arrayBuffer();
  }
  return eventually(
    async () => {
      const r = await a.call('GET', '/admin/v1/audit/checkpoints', { role: 'auditor' });
      const cps = (r.body as { checkpoints: { treeSize: number; note: string }[] }).checkpoints;
      const last = cps.at(-1);
      return last !== undefined && last.treeSize === total && last.note;
    },
    `a checkpoint of size ${total}`,
    20_000,
  );
}

async function verify(target: string, ...extra: string[]) {
  const r = await runCli(['audit', 'verify', '--store', target, '--key', VKEY, ...extra]);
  return { code: r.code, out: r.out + r.err };
}

describe('sluice audit verify --store: the live PostgreSQL store, tampered with in every way', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-live-'));
  let db: TestDatabase;
  let early: TestDatabase;
  /** The latest checkpoint the gateway published (an anchor kept out of the database). */
  let anchorFile: string;
  const copies: TestDatabase[] = [];

  before(async () => {
    db = await testDatabase();
    let a = await gateway(db.url, dir);
    await refuse(a, 6, 6);
    await a.stop();
    early = await copyDatabase(db.url); // the store as it was with 6 entries
    a = await gateway(db.url, dir);
    const note = await refuse(a, 6, 12);
    await a.stop();
    anchorFile = join(dir, 'anchor.txt');
    writeFileSync(anchorFile, note);
  });
  after(async () => {
    for (const c of copies) await c.drop();
    await early?.drop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A copy of the finished store with `tamper` applied to it. */
  async function tampered(tamper: (s: Store) => Promise<unknown>): Promise<string> {
    const c = await copyDatabase(db.url);
    copies.push(c);
    const s = await PostgresStore.open(c.url);
    try {
      await tamper(s);
    } finally {
      await s.close();
    }
    return c.url;
  }

  it('the untouched store verifies: 12 entries, keys pinned, against the published checkpoint', async () => {
    const r = await verify(db.url, '--anchor', anchorFile);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^ok: 12 entries/);
    assert.match(r.out, /keys: pinned/);
  });

  it('refuses to trust the database on its own: --store without --key is a usage error', async () => {
    const r = await runCli(['audit', 'verify', '--store', db.url]);
    assert.equal(r.code, 2);
  });

  it('an entry modified', async () => {
    const url = await tampered((s) =>
      s.query(`UPDATE audit_entries SET entry = jsonb_set(entry, '{reason}', '"edited"') WHERE seq = 3`),
    );
    const r = await verify(url);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}modified at index 3:/m);
  });

  it('an entry deleted', async () => {
    const url = await tampered((s) => s.query('DELETE FROM audit_entries WHERE seq = 5'));
    const r = await verify(url);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}removed at index 5:/m);
  });

  it('an entry inserted (the later ones renumbered to make room)', async () => {
    const url = await tampered(async (s) => {
      await s.query('UPDATE audit_entries SET seq = seq + 1000 WHERE seq >= 4');
      await s.query('UPDATE audit_entries SET seq = seq - 999 WHERE seq >= 1000');
      await s.query(
        `INSERT INTO audit_entries (seq, event_id, entry, leaf_hash)
         SELECT 4, 'forged', jsonb_set(entry, '{id}', '"forged"'), leaf_hash FROM audit_entries WHERE seq = 3`,
      );
    });
    const r = await verify(url);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}inserted at index 4:/m);
  });

  it('two entries reordered', async () => {
    const url = await tampered(async (s) => {
      await s.query('UPDATE audit_entries SET seq = 1002 WHERE seq = 2');
      await s.query('UPDATE audit_entries SET seq = 2 WHERE seq = 7');
      await s.query('UPDATE audit_entries SET seq = 7 WHERE seq = 1002');
    });
    const r = await verify(url);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}reordered/m);
  });

  it('the log truncated: the last entries deleted under the checkpoints that cover them', async () => {
    const url = await tampered((s) => s.query('DELETE FROM audit_entries WHERE seq >= 9'));
    const r = await verify(url);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}(truncated|removed) at index 9:/m);
  });

  it('the log truncated cleanly (entries and their checkpoints): caught against the published checkpoint', async () => {
    const url = await tampered(async (s) => {
      await s.query('DELETE FROM audit_entries WHERE seq >= 9');
      await s.query('DELETE FROM audit_checkpoints WHERE tree_size > 9');
    });
    assert.equal((await verify(url)).code, 0, 'a shorter log alone is consistent: only an anchor tells');
    const r = await verify(url, '--anchor', anchorFile);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /(truncated|rolled-back)\b.*anchor/);
  });

  it('a checkpoint forged: another key signs a different root of the same size', async () => {
    const url = await tampered(async (s) => {
      const [cp] = await s.query<{ tree_size: string; note: string }>(
        'SELECT tree_size, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1',
      );
      const body = parseCheckpoint(cp!.note.slice(0, cp!.note.indexOf('\n\n') + 1));
      const forged = signCheckpoint({ ...body, rootHash: Buffer.alloc(32, 7), time: new Date() }, [
        generateNoteSigner(ORIGIN),
      ]);
      await s.query('UPDATE audit_checkpoints SET note = $1 WHERE tree_size = $2::bigint', [
        forged,
        cp!.tree_size,
      ]);
    });
    const r = await verify(url);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /forged-checkpoint/);
  });

  it('the whole store rolled back to an earlier copy: consistent in itself, refused against the anchor', async () => {
    const alone = await verify(early.url);
    assert.equal(alone.code, 0, alone.out);
    assert.match(alone.out, /^ok: 6 entries/);
    const r = await verify(early.url, '--anchor', anchorFile);
    assert.equal(r.code, 1, r.out);
    // The copy is a consistent log of 6: the anchor, which commits to 12, is what it cannot extend.
    assert.match(r.out, /(truncated|rolled-back)\b.*anchor/);
  });
});

describe('sluice audit verify --store: an embedded (PGlite) store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-audit-live-pglite-'));
  const data = join(dir, 'data');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('verifies the stopped gateway’s data directory, and names an entry modified in it', async () => {
    const a = await gateway(data, dir);
    await refuse(a, 4, 4);
    await a.stop();
    const ok = await verify(data);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^ok: 4 entries/);

    const s = await PgliteStore.open(data);
    await s.query(
      `UPDATE audit_entries SET entry = jsonb_set(entry, '{route}', '"elsewhere"') WHERE seq = 1`,
    );
    await s.close();
    const bad = await verify(data);
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /^ {2}modified at index 1:/m);
  });
});
