/**
 * The per-subject keys, kept outside the log in `audit_subject_keys` (migration 007): a random
 * pseudonym (what leaves name), the subject's AES-256 key, and an HMAC of the subject identifier so
 * a subject can be found by its identifier without the table holding it. Deleting the row destroys
 * the key and the link from identifier to pseudonym: that is the erasure.
 *
 * Keys (and the HMAC's secret, `audit_subject_lookup`) are wrapped with AES-256-GCM under a
 * key-encryption key (KEK) from the config or the environment (kek.ts), so the database alone reads
 * nothing. Without a KEK they are stored unwrapped (with a warning at start): whoever reads the
 * table reads the log. Rows stored unwrapped are wrapped at the first start with a KEK.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type { Queryable, Store } from '../../store/store.js';

export interface SubjectKey {
  pseudonym: string;
  key: Buffer;
}

interface KeyRow {
  pseudonym: string;
  lookup: string;
  key: Uint8Array;
  kek_id: string | null;
}

const KEY_BYTES = 32;

export class SubjectKeys {
  private constructor(
    private readonly kek: Buffer | undefined,
    /** The id of the KEK (4 bytes of HKDF, hex): a row records which KEK wrapped it. */
    readonly kekId: string | undefined,
    private readonly lookupSecret: Buffer,
  ) {}

  /** Reads (or makes, once) the lookup secret; with a KEK, wraps the rows stored unwrapped. */
  static async open(store: Store, kek?: Buffer): Promise<SubjectKeys> {
    if (kek !== undefined && kek.length !== KEY_BYTES)
      throw new Error('the audit subject KEK must be 32 bytes');
    const kekId =
      kek === undefined
        ? undefined
        : Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'sluice-audit-kek-id', 4)).toString('hex');
    return store.transaction(async (tx) => {
      const fresh = randomBytes(KEY_BYTES);
      await tx.query(
        `INSERT INTO audit_subject_lookup (id, secret, kek_id) VALUES (1, decode($1, 'hex'), $2) ON CONFLICT (id) DO NOTHING`,
        [(kek ? wrap(kek, 'lookup', fresh) : fresh).toString('hex'), kekId ?? null],
      );
      const row = (
        await tx.query<{ secret: Uint8Array; kek_id: string | null }>(
          'SELECT secret, kek_id FROM audit_subject_lookup WHERE id = 1 FOR UPDATE',
        )
      )[0]!;
      const secret = unwrapWith(kek, kekId, row.kek_id, 'lookup', Buffer.from(row.secret));
      const keys = new SubjectKeys(kek, kekId, secret);
      if (kek && row.kek_id === null) {
        await tx.query(
          `UPDATE audit_subject_lookup SET secret = decode($1, 'hex'), kek_id = $2 WHERE id = 1`,
          [wrap(kek, 'lookup', secret).toString('hex'), kekId],
        );
      }
      if (kek) {
        const plain = await tx.query<{ pseudonym: string; key: Uint8Array }>(
          'SELECT pseudonym, key FROM audit_subject_keys WHERE kek_id IS NULL FOR UPDATE',
        );
        if (plain.length > 0)
          await tx.query(
            `UPDATE audit_subject_keys k SET key = decode(u.w, 'hex'), kek_id = $3
             FROM unnest($1::text[], $2::text[]) AS u(p, w) WHERE k.pseudonym = u.p`,
            [
              plain.map((r) => r.pseudonym),
              plain.map((r) => wrap(kek, r.pseudonym, Buffer.from(r.key)).toString('hex')),
              kekId,
            ],
          );
      }
      return keys;
    });
  }

  get wrapped(): boolean {
    return this.kek !== undefined;
  }

  /** HMAC-SHA256 of a (normalised) subject identifier under the lookup secret. */
  lookup(identifier: string): Buffer {
    return createHmac('sha256', this.lookupSecret).update(identifier, 'utf8').digest();
  }

  private unwrapRow(r: KeyRow | { pseudonym: string; key: Uint8Array; kek_id: string | null }): Buffer {
    return unwrapWith(this.kek, this.kekId, r.kek_id, r.pseudonym, Buffer.from(r.key));
  }

  private async select(q: Queryable, lookups: readonly string[], lock: string): Promise<Map<string, KeyRow>> {
    const rows = await q.query<KeyRow>(
      `SELECT pseudonym, encode(lookup, 'hex') AS lookup, key, kek_id FROM audit_subject_keys
       WHERE lookup IN (SELECT decode(x, 'hex') FROM unnest($1::text[]) AS x) ${lock}`,
      [lookups],
    );
    return new Map(rows.map((r) => [r.lookup, r]));
  }

  /**
   * The keys of these subjects, made for those that have none. Rows are locked FOR SHARE, so an
   * erasure (which deletes the row) waits for the transaction that seals with it.
   */
  async obtain(q: Queryable, identifiers: readonly string[]): Promise<Map<string, SubjectKey>> {
    const ids = [...new Set(identifiers)];
    const out = new Map<string, SubjectKey>();
    if (ids.length === 0) return out;
    const lookups = ids.map((i) => this.lookup(i).toString('hex'));
    let rows = await this.select(q, lookups, 'FOR SHARE');
    const missing = lookups.filter((l) => !rows.has(l));
    if (missing.length > 0) {
      const made = missing.map((l) => {
        const pseudonym = `sp_${randomBytes(16).toString('base64url')}`;
        const key = randomBytes(KEY_BYTES);
        return { l, pseudonym, stored: this.kek ? wrap(this.kek, pseudonym, key) : key };
      });
      await q.query(
        `INSERT INTO audit_subject_keys (pseudonym, lookup, key, kek_id)
         SELECT p, decode(l, 'hex'), decode(k, 'hex'), $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(p, l, k)
         ON CONFLICT (lookup) DO NOTHING`,
        [
          made.map((m) => m.pseudonym),
          made.map((m) => m.l),
          made.map((m) => m.stored.toString('hex')),
          this.kekId ?? null,
        ],
      );
      rows = new Map([...rows, ...(await this.select(q, missing, 'FOR SHARE'))]);
    }
    ids.forEach((id, i) => {
      const r = rows.get(lookups[i]!);
      if (!r) throw new Error('an audit subject key vanished while it was being made');
      out.set(id, { pseudonym: r.pseudonym, key: this.unwrapRow(r) });
    });
    return out;
  }

  /** The key of one subject, if it has one (`forUpdate`: lock the row, as an erasure does). */
  async find(q: Queryable, identifier: string, forUpdate = false): Promise<SubjectKey | undefined> {
    const l = this.lookup(identifier).toString('hex');
    const r = (await this.select(q, [l], forUpdate ? 'FOR UPDATE' : '')).get(l);
    return r && { pseudonym: r.pseudonym, key: this.unwrapRow(r) };
  }

  /** The pseudonyms of those identifiers (normalized) that have a key, in one query. */
  async pseudonyms(q: Queryable, identifiers: readonly string[]): Promise<string[]> {
    if (identifiers.length === 0) return [];
    const rows = await this.select(
      q,
      [...new Set(identifiers.map((i) => this.lookup(i).toString('hex')))],
      '',
    );
    return [...rows.values()].map((r) => r.pseudonym);
  }

  /** The keys that still exist among these pseudonyms. */
  async byPseudonym(q: Queryable, pseudonyms: readonly string[]): Promise<Map<string, Buffer>> {
    const ps = [...new Set(pseudonyms)];
    if (ps.length === 0) return new Map();
    const rows = await q.query<{ pseudonym: string; key: Uint8Array; kek_id: string | null }>(
      'SELECT pseudonym, key, kek_id FROM audit_subject_keys WHERE pseudonym = ANY($1::text[])',
      [ps],
    );
    return new Map(rows.map((r) => [r.pseudonym, this.unwrapRow(r)]));
  }

  /** Deletes a subject's key: its sealed fields can no longer be opened. */
  async destroy(q: Queryable, pseudonym: string): Promise<boolean> {
    const rows = await q.query('DELETE FROM audit_subject_keys WHERE pseudonym = $1 RETURNING pseudonym', [
      pseudonym,
    ]);
    return rows.length > 0;
  }
}

const wrapAad = (label: string) => Buffer.from(`sluice-audit-subject-key/v1\n${label}`, 'utf8');

/** AES-256-GCM under the KEK: iv(12) ‖ ciphertext ‖ tag(16); the label (pseudonym) as associated data. */
function wrap(kek: Buffer, label: string, key: Buffer): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', kek, iv);
  c.setAAD(wrapAad(label));
  const ct = Buffer.concat([c.update(key), c.final()]);
  return Buffer.concat([iv, ct, c.getAuthTag()]);
}

function unwrapWith(
  kek: Buffer | undefined,
  kekId: string | undefined,
  rowKekId: string | null,
  label: string,
  stored: Buffer,
): Buffer {
  if (rowKekId === null) return stored;
  if (kek === undefined || rowKekId !== kekId)
    throw new Error(
      `audit subject keys are wrapped under the KEK ${rowKekId}; ${kek === undefined ? 'no KEK is configured' : `the configured one is ${kekId}`} (audit.subjectKey or SLUICE_AUDIT_SUBJECT_KEK)`,
    );
  const d = createDecipheriv('aes-256-gcm', kek, stored.subarray(0, 12));
  d.setAAD(wrapAad(label));
  d.setAuthTag(stored.subarray(stored.length - 16));
  return Buffer.concat([d.update(stored.subarray(12, stored.length - 16)), d.final()]);
}
