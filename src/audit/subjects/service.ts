/**
 * What the admin API does with data subjects: opens the sealed fields of what it reads (export
 * bundles keep the sealed leaf data, which is what verifies, and carry the opened entry next to it),
 * erases a subject (erase.ts) and exports one subject's entries with their proofs.
 */
import type { Queryable, Store } from '../../store/store.js';
import type { AuditBundle, BundleEntry } from '../bundle.js';
import type { JsonValue } from '../canonical.js';
import { AuditLogError, type AuditLogStore, bundleFromNodes } from '../log-store.js';
import { type EraseResult, eraseSubject } from './erase.js';
import { sealHook } from './hook.js';
import type { SubjectKeys } from './keys.js';
import { normalizeSubject, openEntry, sealedValues } from './seal.js';

/** A bundle entry with, when it has sealed fields, the entry as people read it. */
export type OpenedBundleEntry = BundleEntry & { opened?: JsonValue };

/** One subject's entries under the latest checkpoint, each proven: a bundle `sluice audit verify` checks. */
export interface SubjectBundle extends AuditBundle {
  subject: { id: string; pseudonym: string };
  entries: OpenedBundleEntry[];
}

export class AuditSubjects {
  /** The sequencer's transform: seals personal fields at integration. */
  readonly seal: ReturnType<typeof sealHook>;

  constructor(
    private readonly store: Store,
    readonly keys: SubjectKeys,
    private readonly log: Pick<AuditLogStore, 'checkpoint'>,
    private readonly signing: { origin: string; publicKeys: readonly string[] },
  ) {
    this.seal = sealHook(keys);
  }

  /** The entries as people read them (sealed fields opened, erased ones shown as `{"erased": pseudonym}`). */
  async openEntries(entries: readonly JsonValue[]): Promise<JsonValue[]> {
    const keys = await this.keys.byPseudonym(
      this.store,
      entries.flatMap((e) => sealedValues(e).map((s) => s.value.sealed)),
    );
    return entries.map((e) => openEntry(e, keys));
  }

  /** The bundle with `opened` beside each entry that has sealed fields; `entry` stays the leaf data. */
  async openBundle<B extends { entries: BundleEntry[] }>(
    bundle: B,
  ): Promise<Omit<B, 'entries'> & { entries: OpenedBundleEntry[] }> {
    // A redacted entry (retention.ts: past its retention, only its leaf hash kept) has nothing to open.
    const opened = await this.openEntries(bundle.entries.map((e) => e.entry ?? null));
    return {
      ...bundle,
      entries: bundle.entries.map((e, i) =>
        e.entry === undefined || opened[i] === e.entry ? e : { ...e, opened: opened[i]! },
      ),
    };
  }

  /**
   * The pseudonyms of the subjects among these identifiers that still have a key (an erased or never
   * seen subject has none): what a query by actor or principal matches (src/audit/query.ts).
   */
  readonly pseudonymsOf = (db: Queryable, identifiers: readonly string[]): Promise<string[]> =>
    this.keys.pseudonyms(db, identifiers.map(normalizeSubject));

  /** Erases a subject; AuditLogError not-found when the log holds nothing of it. */
  async erase(subject: string, who: { actor: string; role: string }): Promise<EraseResult> {
    const r = await eraseSubject(this.store, this.keys, normalizeSubject(subject), who);
    if (!r)
      throw new AuditLogError('not-found', 'the audit log holds nothing of this subject (or it was erased)');
    return r;
  }

  /** Every entry naming the subject under the latest checkpoint, opened, with inclusion proofs to it. */
  async exportSubject(subject: string): Promise<SubjectBundle> {
    const id = normalizeSubject(subject);
    const k = await this.keys.find(this.store, id);
    if (!k)
      throw new AuditLogError('not-found', 'the audit log holds nothing of this subject (or it was erased)');
    const latest = await this.log.checkpoint();
    if (!latest) throw new AuditLogError('not-found', 'no checkpoint yet: nothing to export');
    const rows = await this.store.query<{ seq: string | number; entry: JsonValue }>(
      `SELECT seq, entry FROM audit_entries WHERE entry -> 'subjects' @> $1::jsonb AND seq < $2::bigint ORDER BY seq`,
      [JSON.stringify([k.pseudonym]), String(latest.treeSize)],
    );
    const bundle = await bundleFromNodes(this.store, {
      origin: this.signing.origin,
      publicKeys: [...this.signing.publicKeys],
      checkpoints: [{ treeSize: latest.treeSize, note: latest.note }],
      entries: rows.map((r) => ({ index: Number(r.seq), entry: r.entry })),
      complete: false,
    });
    return { ...(await this.openBundle(bundle)), subject: { id, pseudonym: k.pseudonym } };
  }
}
