/**
 * The sequencer's integration hook (SequencerOptions.transform): in the batch's transaction, just
 * before outbox rows become leaves, seals their personal fields under their subjects' keys (made
 * for subjects seen for the first time). The leaf therefore holds pseudonyms and ciphertext only;
 * the plaintext lived in the outboxes until this moment (docs/audit-log.md, "Erasure").
 */
import type { Queryable } from '../../store/store.js';
import type { SubjectKeys } from './keys.js';
import { type JsonObject, personalFields, sealEntry, sealedValues } from './seal.js';

export interface OutboxEntryRow {
  id: string;
  entry: unknown;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

export function sealHook(keys: SubjectKeys) {
  return async <R extends OutboxEntryRow>(tx: Queryable, rows: readonly R[]): Promise<R[]> => {
    const fields = rows.map((r) => (isObject(r.entry) ? personalFields(r.entry) : []));
    const found = await keys.obtain(
      tx,
      fields.flatMap((fs) => fs.map((f) => f.subject)),
    );
    return rows.map((r, i) =>
      // Rows an erasure sealed already (no plaintext left) still get their `subjects` listed.
      isObject(r.entry) && (fields[i]!.length > 0 || sealedValues(r.entry).length > 0)
        ? { ...r, entry: sealEntry(r.entry, found) }
        : r,
    );
  };
}
