/**
 * Retention on PGlite and PostgreSQL with an injected clock (no waiting): segments past `hot` are
 * archived as bundle files and pruned by a minimum index; rows below it are gone, the nodes left are
 * only what newer proofs need; proofs of newer entries and consistency from the retained checkpoint
 * still verify against the pinned key; the export of the rest verifies; each archive verifies offline
 * and links to the next; entries past their own retention (type, tenant) are redacted and reported as
 * redacted, and tampering with a redacted entry is still caught.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AuditBundle } from '../../../src/audit/bundle.js';
import { canonicalize } from '../../../src/audit/canonical.js';
import { generateNoteSigner, openCheckpoint, parseVkey, signerVkey } from '../../../src/audit/checkpoint.js';
import { type AuditLogError, AuditLogStore } from '../../../src/audit/log-store.js';
import { verifyConsistency, verifyInclusion } from '../../../src/audit/merkle.js';
import { storeSink } from '../../../src/audit/outbox.js';
import { AuditRetention, retentionMs, retentionOptions } from '../../../src/audit/retention.js';
import { AuditSequencer } from '../../../src/audit/sequencer.js';
import { verifyBundle } from '../../../src/audit/verify.js';
import { migrate } from '../../../src/store/migrate.js';
import type { Store } from '../../../src/store/store.js';
import { STORE_KINDS, type TestStores, testStores } from '../../harness/postgres.js';

const ORIGIN = 'sluice.test/audit';
const DAY = 86_400_000;

/** SHA-256(0x00 ‖ JCS(entry)), written out here. */
const leafOf = (e: unknown) =>
  createHash('sha256')
    .update(Buffer.from([0]))
    .update(canonicalize(e), 'utf8')
    .digest();

test('retention durations: days, weeks, years of 365 days', () => {
  assert.equal(retentionMs('90d'), 90 * DAY);
  assert.equal(retentionMs('7y'), 2555 * DAY);
  assert.equal(retentionMs('2w'), 14 * DAY);
  assert.equal(retentionMs('500ms'), 500);
  assert.throws(() => retentionMs('7 years'), /not a retention duration/);
});

for (const kind of STORE_KINDS)
  describe(`audit retention (${kind})`, () => {
    let stores: TestStores;
    let store: Store;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-retention-'));
    const signer = generateNoteSigner(ORIGIN);
    const vkey = signerVkey(signer);
    let seq: AuditSequencer;
    let clock = Date.now();
    const entries: Record<string, string | number>[] = [];

    /** Entry i: admin changes, auth failures of acme, and of globex (whose tenant override is 10y). */
    const entryOf = (i: number): Record<string, string | number> =>
      i % 3 === 0
        ? { id: `e${i}`, type: 'admin_change', target: `tenant:t${i}` }
        : { id: `e${i}`, type: 'auth_failed', tenant: i % 3 === 1 ? 'acme' : 'globex', n: i };

    async function add(n: number): Promise<void> {
      const rows = Array.from({ length: n }, (_, k) => entryOf(entries.length + k));
      entries.push(...rows);
      await storeSink(store).forward(rows.map((e) => ({ id: String(e.id), replica: 'r', entry: e })));
      while ((await seq.tick()) > 0);
    }

    before(async () => {
      stores = await testStores(kind);
      store = await stores.open();
      await migrate(store);
      seq = new AuditSequencer(store, {
        replica: 'r',
        origin: ORIGIN,
        signers: [signer],
        checkpointEvery: 10,
        checkpointSeconds: 3600,
        leaseMs: 600_000,
      });
    });
    after(async () => {
      await seq.close();
      await stores.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('archives and prunes by a minimum index; newer proofs, the export and the archives verify; redaction is reported as such', async () => {
      await add(55); // checkpoints at 10, 20, 30, 40, 50; 50..54 wait for the next
      const retention = new AuditRetention(
        store,
        retentionOptions(
          {
            hot: '90d',
            types: { auth_failed: '30d' },
            tenants: { globex: '10y' },
            archive: { dir },
            segment: 20,
          },
          { origin: ORIGIN, publicKeys: [vkey], replica: 'r', now: () => new Date(clock) },
        ),
      );
      const log = new AuditLogStore(store, { origin: ORIGIN, publicKeys: [vkey] });

      // Nothing is past `hot` yet.
      assert.deepEqual((await retention.run()).archived, []);

      clock += 100 * DAY;
      const run = await retention.run();
      assert.deepEqual(
        run.archived.map((a) => [a.from, a.to]),
        [
          [0, 20],
          [20, 40],
          [40, 50],
        ],
      );
      assert.equal(run.minIndex, 50);
      // Only acme's auth failures are past their 30 days at archive time (globex keeps 10y, admin changes 7y).
      const acme = (from: number, to: number) =>
        entries.slice(from, to).filter((e) => e.tenant === 'acme').length;
      assert.deepEqual(
        run.archived.map((a) => a.redacted),
        [acme(0, 20), acme(20, 40), acme(40, 50)],
      );

      // Rows below the minimum index are gone; of the nodes wholly below it only the frontier of 50 is left.
      const seqs = (await store.query<{ seq: string }>('SELECT seq FROM audit_entries ORDER BY seq')).map(
        (r) => Number(r.seq),
      );
      assert.deepEqual(seqs, [50, 51, 52, 53, 54]);
      const cps = await store.query<{ tree_size: string }>(
        'SELECT tree_size FROM audit_checkpoints ORDER BY 1',
      );
      assert.deepEqual(
        cps.map((r) => Number(r.tree_size)),
        [50],
      );
      const below = await store.query<{ level: number; idx: string }>(
        'SELECT level, idx FROM audit_nodes WHERE (idx + 1) * (1::bigint << level) <= 50 ORDER BY level DESC',
      );
      // 50 = 32 + 16 + 2: the subtrees [0, 32), [32, 48), [48, 50).
      assert.deepEqual(
        below.map((r) => [r.level, Number(r.idx)]),
        [
          [5, 0],
          [4, 2],
          [1, 24],
        ],
      );

      // The log goes on: proofs of newer entries and consistency from the retained checkpoint verify.
      await add(15); // checkpoints at 60 and 70
      const verifier = parseVkey(vkey);
      const opened = (note: string) => {
        const o = openCheckpoint(note, [verifier], ORIGIN);
        assert.ok(o.ok);
        return o.checkpoint;
      };
      for (const i of [50, 51, 55, 63, 69]) {
        const p = await log.inclusion(i, 70);
        const cp = opened(p.checkpoint);
        const proof = p.proof.map((h) => Buffer.from(h, 'base64'));
        assert.ok(verifyInclusion(leafOf(entries[i]), i, 70, proof, cp.rootHash), `entry ${i}`);
      }
      const byEvent = await log.inclusionByEvent('e60');
      assert.equal(byEvent.seq, 60);
      for (const [a, b] of [
        [50, 60],
        [50, 70],
        [60, 70],
      ] as const) {
        const c = await log.consistency(a, b);
        const [ca, cb] = c.checkpoints.map(opened);
        assert.ok(
          verifyConsistency(
            a,
            b,
            ca!.rootHash,
            cb!.rootHash,
            c.proof.map((h) => Buffer.from(h, 'base64')),
          ),
          `${a} → ${b}`,
        );
      }
      // What was archived is refused as archived, naming the file.
      await assert.rejects(log.inclusion(3), (err: AuditLogError) => {
        assert.equal(err.kind, 'archived');
        assert.match(err.message, /archived in sluice\.test_audit-000000000000000-000000000000020\.json/);
        assert.equal(err.archived?.minIndex, 50);
        return true;
      });
      await assert.rejects(log.consistency(40, 70), (err: AuditLogError) => err.kind === 'archived');
      await assert.rejects(log.exportBundle({ from: 10 }), (err: AuditLogError) => err.kind === 'archived');

      // The export of the rest verifies with the pinned key.
      const rest = await log.exportBundle();
      assert.deepEqual(
        rest.entries.map((e) => e.index),
        Array.from({ length: 20 }, (_, k) => 50 + k),
      );
      const restReport = verifyBundle(rest, { trustedKeys: [vkey] });
      assert.equal(restReport.ok, true, JSON.stringify(restReport.problems));
      assert.equal(restReport.entriesVerified, 20);

      // Each archive verifies offline; redacted entries are reported as redacted, not as problems.
      const files = readdirSync(dir).sort();
      assert.equal(files.length, 3);
      const archives = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as AuditBundle);
      archives.forEach((a, k) => {
        const r = verifyBundle(a, { trustedKeys: [vkey] });
        assert.equal(r.ok, true, `${files[k]}: ${JSON.stringify(r.problems)}`);
        assert.equal(r.entriesVerified, a.segment!.to - a.segment!.from);
        assert.equal(r.entriesRedacted, run.archived[k]!.redacted);
        for (const e of a.entries) {
          const original = entries[e.index]!;
          if (original.tenant === 'acme') {
            assert.equal(e.redacted, true);
            assert.equal(e.entry, undefined);
            assert.equal(e.leafHash, leafOf(original).toString('base64'));
          } else {
            assert.deepEqual(e.entry, original);
          }
        }
      });
      // Archives chain: each starts with the checkpoint the previous one ends with.
      for (let k = 1; k < archives.length; k++)
        assert.equal(archives[k]!.checkpoints[0], archives[k - 1]!.checkpoints.at(-1));
      // And the hot store's first checkpoint is the last archive's last.
      assert.equal(rest.checkpoints[0], archives.at(-1)!.checkpoints.at(-1));

      // Tampering with an archive is still caught: a redacted entry's leaf hash changed, an entry dropped.
      const a0 = structuredClone(archives[0]!);
      const red = a0.entries.findIndex((e) => e.redacted);
      a0.entries[red]!.leafHash = leafOf({ forged: true }).toString('base64');
      const bad = verifyBundle(a0, { trustedKeys: [vkey] });
      assert.equal(bad.ok, false);
      assert.deepEqual(
        bad.problems.map((p) => [p.kind, p.index]),
        [['modified', a0.entries[red]!.index]],
      );
      const a1 = structuredClone(archives[1]!);
      a1.entries.splice(4, 1);
      assert.deepEqual(
        verifyBundle(a1, { trustedKeys: [vkey] }).problems.map((p) => [p.kind, p.index]),
        [['removed', 24]],
      );

      // Years later: every archived entry past 7 years is redacted in place, globex's (10y) stay.
      clock += 8 * 365 * DAY;
      const later = await retention.run();
      const readable = (from: number, to: number) =>
        entries.slice(from, to).filter((e) => e.tenant === 'globex').length;
      assert.equal(
        later.redacted,
        entries.slice(0, 50).filter((e) => e.tenant !== 'acme' && e.tenant !== 'globex').length,
      );
      for (const [k, f] of files.entries()) {
        const a = JSON.parse(readFileSync(join(dir, f), 'utf8')) as AuditBundle;
        const r = verifyBundle(a, { trustedKeys: [vkey] });
        assert.equal(r.ok, true, JSON.stringify(r.problems));
        const { from, to } = a.segment!;
        assert.equal(r.entriesRedacted, to - from - readable(from, to), files[k]);
      }
      // The run also archived everything under the latest checkpoint (all of it is past `hot` now).
      assert.deepEqual(
        later.archived.map((a) => [a.from, a.to]),
        [[50, 70]],
      );
    });

    test('an archive file changed on disk is left alone by redaction', async () => {
      const files = readdirSync(dir).sort();
      const file = join(dir, files[0]!);
      const text = readFileSync(file, 'utf8');
      writeFileSync(file, text.replace('"complete":false', '"complete":false '));
      await store.query('UPDATE audit_archives SET next_redaction = now() WHERE from_seq = 0');
      const warned: unknown[] = [];
      const retention = new AuditRetention(
        store,
        retentionOptions(
          { hot: '90d', archive: { dir } },
          { origin: ORIGIN, publicKeys: [vkey], replica: 'r', now: () => new Date(clock + 20 * 365 * DAY) },
        ),
        { info: () => {}, warn: (o: unknown) => warned.push(o) },
      );
      const r = await retention.run();
      assert.equal(readFileSync(file, 'utf8').includes('"complete":false '), true);
      assert.deepEqual(
        warned.map((w) => (w as { event: string }).event),
        ['audit_archive_changed'],
      );
      assert.ok(r.redacted > 0, 'the other archives were redacted');
    });
  });
