/**
 * Erasure by crypto-shredding: `eraseSubject` destroys a subject's key (deletes its row of
 * `audit_subject_keys`) and records a `subject_erased` entry that names only the pseudonym. Every
 * sealed field of the subject, in every leaf already integrated, can then no longer be opened, while
 * the leaves, their hashes and every proof stay exactly as they were.
 *
 * Rows still waiting in the store outbox (plaintext until integration) are sealed first, in the same
 * transaction, under the key about to be destroyed, so they too enter the log unreadable. The
 * transaction first locks the tree row, as each of the sequencer's batches does: an erasure and an
 * integration never interleave, so no batch can read a row before it was sealed and seal it again
 * under a new key after the old one was deleted. Events still in a process's file outbox (not yet
 * forwarded to the store) cannot be reached: they are integrated later under a new pseudonym.
 */
import { randomUUID } from 'node:crypto';
import type { Queryable, Store } from '../../store/store.js';
import type { SubjectKeys } from './keys.js';
import { type JsonObject, personalFields, sealEntry } from './seal.js';

export interface EraseResult {
  /** The pseudonym the erased subject had in the log (what `subject_erased` names). */
  pseudonym: string;
  /** Outbox rows not yet integrated whose fields of the subject were sealed before the key went. */
  pending: number;
  /** The id of the `subject_erased` event. */
  event: string;
}

const PAGE = 1000;

/** Pending outbox rows with a field of the subject (in arrival order). */
async function pendingRowsOf(
  tx: Queryable,
  identifier: string,
): Promise<{ id: string; entry: JsonObject }[]> {
  const out: { id: string; entry: JsonObject }[] = [];
  for (let after = '0'; ; ) {
    const rows = await tx.query<{ id: string; pos: string | number; entry: JsonObject }>(
      'SELECT id, pos, entry FROM audit_outbox WHERE pos > $1::bigint ORDER BY pos LIMIT $2',
      [after, PAGE],
    );
    for (const r of rows)
      if (personalFields(r.entry).some((f) => f.subject === identifier))
        out.push({ id: r.id, entry: r.entry });
    if (rows.length < PAGE) return out;
    after = String(rows.at(-1)!.pos);
  }
}

/**
 * Erases a (normalised) subject; undefined when the log holds nothing of it (no key: never seen,
 * or erased already) and no pending row names it.
 */
export async function eraseSubject(
  store: Store,
  keys: SubjectKeys,
  identifier: string,
  who: { actor: string; role: string },
): Promise<EraseResult | undefined> {
  return store.transaction(async (tx) => {
    await tx.query('SELECT id FROM audit_tree WHERE id = 1 FOR UPDATE');
    const existing = await keys.find(tx, identifier, true);
    const pending = await pendingRowsOf(tx, identifier);
    if (!existing && pending.length === 0) return undefined;
    const k = existing ?? (await keys.obtain(tx, [identifier])).get(identifier)!;
    const only = new Map([[identifier, k]]);
    for (const r of pending)
      await tx.query('UPDATE audit_outbox SET entry = $2::jsonb WHERE id = $1', [
        r.id,
        JSON.stringify(sealEntry(r.entry, only)),
      ]);
    await keys.destroy(tx, k.pseudonym);
    const event = `subject-erased-${randomUUID()}`;
    const entry = {
      id: event,
      type: 'subject_erased',
      at: new Date().toISOString(),
      subject: k.pseudonym,
      pending: pending.length,
      // Sealed at integration under the admin's own subject, as every actor is.
      actor: who.actor,
      role: who.role,
    };
    await tx.query(`INSERT INTO audit_outbox (id, replica, entry) VALUES ($1, 'erase', $2::jsonb)`, [
      event,
      JSON.stringify(entry),
    ]);
    return { pseudonym: k.pseudonym, pending: pending.length, event };
  });
}
