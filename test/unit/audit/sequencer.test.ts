import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { canonicalize } from '../../../src/audit/canonical.js';
import { generateNoteSigner, signerVkey } from '../../../src/audit/checkpoint.js';
import { AuditLogStore } from '../../../src/audit/log-store.js';
import { type OutboxRow, storeSink } from '../../../src/audit/outbox.js';
import { AUDIT_SEQUENCER_LEASE, AuditSequencer } from '../../../src/audit/sequencer.js';
import { verifyBundle } from '../../../src/audit/verify.js';
import { migrate } from '../../../src/store/migrate.js';
import { openStore } from '../../../src/store/open.js';
import type { Store } from '../../../src/store/store.js';
import { testDatabase } from '../../harness/postgres.js';

const ORIGIN = 'sluice.test/audit';

function rows(replica: string, n: number, from = 0): OutboxRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${replica}-${from + i}`,
    replica,
    entry: { id: `${replica}-${from + i}`, type: 'auth_failed', n: from + i },
  }));
}

async function entries(
  store: Store,
): Promise<{ seq: number; event_id: string; entry: unknown; leaf: Buffer }[]> {
  const r = await store.query<{ seq: string; event_id: string; entry: unknown; leaf_hash: Uint8Array }>(
    'SELECT seq, event_id, entry, leaf_hash FROM audit_entries ORDER BY seq',
  );
  return r.map((x) => ({
    seq: Number(x.seq),
    event_id: x.event_id,
    entry: x.entry,
    leaf: Buffer.from(x.leaf_hash),
  }));
}

/** SHA-256(0x00 ‖ JCS(entry)), written out here rather than taken from the module under test. */
function leafOf(entry: unknown): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(canonicalize(entry), 'utf8')
    .digest();
}

describe('audit sequencer', () => {
  it('two sequencers on one PostgreSQL make one linear log: nothing twice, nothing missing, through a lease handover', async () => {
    const db = await testDatabase();
    const [sa, sb, writer] = await Promise.all([1, 2, 3].map(() => openStore({ url: db.url })));
    const signer = generateNoteSigner(ORIGIN);
    try {
      await migrate(writer!);
      const opts = {
        origin: ORIGIN,
        signers: [signer],
        checkpointEvery: 100,
        checkpointSeconds: 3600,
        batch: 37,
      };
      const a = new AuditSequencer(sa!, { ...opts, replica: 'a', leaseMs: 60_000 });
      const b = new AuditSequencer(sb!, { ...opts, replica: 'b', leaseMs: 60_000 });
      const sink = storeSink(writer!);
      const expected: string[] = [];
      // Three replicas forward in batches while both sequencers tick, concurrently.
      for (let round = 0; round < 6; round++) {
        const batch = ['r1', 'r2', 'r3'].flatMap((r) => rows(r, 50, round * 50));
        expected.push(...batch.map((x) => x.id));
        await Promise.all([
          ...['r1', 'r2', 'r3'].map((r) => sink.forward(batch.filter((x) => x.replica === r))),
          a.tick(),
          b.tick(),
        ]);
        if (round === 2) {
          // Handover: the leader stops cleanly and gives the lease up; the other takes it at its next tick.
          const leader = a.leader ? a : b;
          const other = leader === a ? b : a;
          await leader.close();
          await other.tick();
          assert.equal(other.leader, true);
        }
      }
      // Re-forwarding events already integrated (a replica that crashed before its offset file) adds nothing.
      await sink.forward(rows('r1', 50, 0));
      const survivor = a.leader ? a : b;
      while ((await survivor.tick()) > 0);
      assert.equal(a.leader && b.leader, false, 'never two leaders');

      const log = await entries(writer!);
      assert.deepEqual(
        log.map((e) => e.seq),
        expected.map((_, i) => i),
        'seq 0..n-1, no gap',
      );
      assert.deepEqual(log.map((e) => e.event_id).sort(), [...expected].sort(), 'every event once');
      for (const e of log) assert.deepEqual(e.leaf, leafOf(e.entry));
      assert.deepEqual(await writer!.query('SELECT id FROM audit_outbox'), []);

      const logStore = new AuditLogStore(writer!, { origin: ORIGIN, publicKeys: [signerVkey(signer)] });
      const cps = await logStore.checkpoints();
      assert.deepEqual(
        cps.map((c) => c.treeSize),
        [100, 200, 300, 400, 500, 600, 700, 800, 900],
        'a checkpoint every 100 entries exactly',
      );
      const bundle = await logStore.exportBundle();
      const report = verifyBundle(bundle, { trustedKeys: [signerVkey(signer)] });
      assert.equal(report.ok, true, JSON.stringify(report.problems));
      assert.equal(report.treeSize, 900);
      assert.equal(bundle.complete, true);

      const proof = await logStore.inclusion(123, 500);
      assert.equal(proof.treeSize, 500);
      const cons = await logStore.consistency(200, 900);
      assert.equal(cons.proof.length > 0, true);
      await a.close();
      await b.close();
    } finally {
      await Promise.all([sa, sb, writer].map((s) => s!.close()));
      await db.drop();
    }
  });

  it('a sequencer whose lease another holds integrates nothing; the lease passes once it expires', async () => {
    const db = await testDatabase();
    const store = await openStore({ url: db.url });
    const signer = generateNoteSigner(ORIGIN);
    try {
      await migrate(store);
      await store.query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, 'paused', now() + interval '1 hour')",
        [AUDIT_SEQUENCER_LEASE],
      );
      await storeSink(store).forward(rows('r', 10));
      const s = new AuditSequencer(store, { origin: ORIGIN, signers: [signer], replica: 'b' });
      assert.equal(await s.tick(), 0);
      assert.equal(s.leader, false);
      assert.equal((await entries(store)).length, 0);
      // The paused holder's lease runs out (its process is gone): the next tick takes it.
      await store.query("UPDATE leases SET expires_at = now() - interval '1 second' WHERE name = $1", [
        AUDIT_SEQUENCER_LEASE,
      ]);
      assert.equal(await s.tick(), 10);
      assert.equal(s.leader, true);
      // A checkpoint as soon as the first entries are in (none before); later ones by count or time.
      assert.deepEqual(
        (
          await new AuditLogStore(store, { origin: ORIGIN, publicKeys: [signerVkey(signer)] }).checkpoints()
        ).map((c) => c.treeSize),
        [10],
      );
      await s.close();
    } finally {
      await store.close();
      await db.drop();
    }
  });

  it('works on PGlite: admin changes reach the outbox from their own transaction (trigger), and verify', async () => {
    const store = await openStore({ url: 'memory://' });
    const signer = generateNoteSigner(ORIGIN);
    try {
      await migrate(store);
      // Before audit captures: no outbox row.
      await store.query(
        "INSERT INTO admin_changes (actor, role, action, target) VALUES ('x', 'admin', 'a', 't')",
      );
      assert.deepEqual(await store.query('SELECT id FROM audit_outbox'), []);
      await store.query('UPDATE audit_tree SET capture = true WHERE id = 1');
      await store.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO admin_changes (actor, role, action, target, after) VALUES ('alice', 'admin', 'tenant.create', 'tenant:acme', '{"id":"acme","n":1.50}')`,
        );
      });
      // A rolled-back change leaves no audit row either.
      await store
        .transaction(async (tx) => {
          await tx.query(
            "INSERT INTO admin_changes (actor, role, action, target) VALUES ('bob', 'admin', 'b', 't')",
          );
          throw new Error('rollback');
        })
        .catch(() => {});
      const s = new AuditSequencer(store, { origin: ORIGIN, signers: [signer], replica: 'only' });
      assert.equal(await s.tick(), 1);
      const [e] = await entries(store);
      assert.equal((e!.entry as { action: string }).action, 'tenant.create');
      assert.equal((e!.entry as { actor: string }).actor, 'alice');
      assert.match((e!.entry as { at: string }).at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const bundle = await new AuditLogStore(store, {
        origin: ORIGIN,
        publicKeys: [signerVkey(signer)],
      }).exportBundle();
      assert.equal(verifyBundle(bundle, { trustedKeys: [signerVkey(signer)] }).ok, true);
      await s.close();
    } finally {
      await store.close();
    }
  });
});
