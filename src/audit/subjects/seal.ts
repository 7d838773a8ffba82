/**
 * Sealing the personal fields of audit entries, per data subject (docs/audit-log.md, "Erasure
 * (crypto-shredding)"). Pure: no store here (keys.ts keeps the keys, hook.ts applies this at
 * integration).
 *
 * - A **subject identifier** names a data subject: `principal:<id>` (an API key id or a token's
 *   `issuer:sub`, as the gateway records principals), `ip:<address>` (a client address seen without a
 *   principal) or `admin:<name>` (an admin API caller, or a person who moved a release).
 * - **Which fields, whose:** `principal` and `client` (and a rate limit's `key`, which may hold the
 *   address) belong to the request's subject: the principal when there is one (an address seen with a
 *   principal is that principal's data), else `ip:<client>`. `actor` belongs to `admin:<name>`, except
 *   the system actors `config` and `driver:<replica>`, which name no person. Token claims (a member
 *   `claims`, at the top or anywhere in `before`/`after`) belong to the request's subject, else the actor's.
 * - A sealed field is `{"sealed": "<pseudonym>", "data": "<base64 iv ‖ ciphertext ‖ tag>"}`: AES-256-GCM
 *   of the value's JSON under the subject's key, with a fresh random 96-bit IV, and the event id, the
 *   field's path and the pseudonym as associated data, so a sealed value cannot be moved to another
 *   entry, field or subject unnoticed. A sealed entry lists its pseudonyms in a top-level `subjects`.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { JsonValue } from '../canonical.js';

export type JsonObject = { [key: string]: JsonValue };

export interface Sealed {
  sealed: string;
  data: string;
}

const PSEUDONYM = /^sp_[A-Za-z0-9_-]{22}$/;
const AAD_LABEL = 'sluice-audit-seal/v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SubjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SubjectError';
  }
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Whether a value is a sealed field (exactly the two members, a well-formed pseudonym). */
export function isSealed(v: unknown): v is Sealed {
  if (!isObject(v)) return false;
  const keys = Object.keys(v);
  return (
    keys.length === 2 &&
    typeof v.sealed === 'string' &&
    PSEUDONYM.test(v.sealed) &&
    typeof v.data === 'string'
  );
}

export function isPseudonym(s: string): boolean {
  return PSEUDONYM.test(s);
}

/** One spelling per address: IPv4-mapped IPv6 as IPv4, IPv6 compressed and lower case. */
export function normalizeAddress(address: string): string {
  const a = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(a);
  if (mapped) return mapped[1]!;
  if (isIPv6(a)) {
    try {
      return new URL(`http://[${a}]/`).hostname.slice(1, -1);
    } catch {
      return a; // a zone id (fe80::1%eth0): kept as written
    }
  }
  return a;
}

/** The canonical form of a subject identifier; throws SubjectError for one of no known kind. */
export function normalizeSubject(identifier: string): string {
  const m = /^(principal|ip|admin):(.+)$/s.exec(identifier);
  if (!m) throw new SubjectError('a subject is principal:<id>, ip:<address> or admin:<name>');
  return m[1] === 'ip' ? `ip:${normalizeAddress(m[2]!)}` : identifier;
}

/** The subject of an actor; undefined for the system actors (`config`, `driver:<replica>`). */
export function actorSubject(actor: string): string | undefined {
  if (actor === 'config' || actor.startsWith('driver:')) return undefined;
  // Release decisions by people record `<name> (<role>)`.
  const m = /^(.+) \(([a-z]+)\)$/s.exec(actor);
  return `admin:${m ? m[1] : actor}`;
}

export interface PersonalField {
  path: string[];
  subject: string;
}

/** The personal fields of an entry that are not sealed yet, each with its subject. */
export function personalFields(entry: JsonObject): PersonalField[] {
  const out: PersonalField[] = [];
  const plain = (v: JsonValue | undefined) => v !== undefined && v !== null && !isSealed(v);
  const principal = typeof entry.principal === 'string' ? entry.principal : undefined;
  const client = typeof entry.client === 'string' ? entry.client : undefined;
  const request = principal
    ? `principal:${principal}`
    : client
      ? `ip:${normalizeAddress(client)}`
      : undefined;
  const actor = typeof entry.actor === 'string' ? actorSubject(entry.actor) : undefined;
  if (request) {
    for (const f of entry.type === 'limit_breached'
      ? ['principal', 'client', 'key']
      : ['principal', 'client'])
      if (plain(entry[f])) out.push({ path: [f], subject: request });
  }
  if (actor && plain(entry.actor)) out.push({ path: ['actor'], subject: actor });
  const claimsOwner = request ?? actor;
  if (claimsOwner) {
    if (plain(entry.claims)) out.push({ path: ['claims'], subject: claimsOwner });
    const walk = (v: JsonValue, path: string[]) => {
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) walk(v[i]!, [...path, String(i)]);
      } else if (isObject(v) && !isSealed(v))
        for (const [k, x] of Object.entries(v)) {
          if (k === 'claims' && plain(x)) out.push({ path: [...path, k], subject: claimsOwner });
          else walk(x, [...path, k]);
        }
    };
    for (const f of ['before', 'after']) if (entry[f] !== undefined) walk(entry[f] as JsonValue, [f]);
  }
  return out;
}

/** Every sealed value of an entry, with its path. */
export function sealedValues(v: JsonValue, path: string[] = []): { path: string[]; value: Sealed }[] {
  if (isSealed(v)) return [{ path, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => sealedValues(x, [...path, String(i)]));
  if (isObject(v)) return Object.entries(v).flatMap(([k, x]) => sealedValues(x, [...path, k]));
  return [];
}

const aad = (eventId: string, path: readonly string[], pseudonym: string) =>
  Buffer.from(JSON.stringify([AAD_LABEL, eventId, path, pseudonym]), 'utf8');

/** Seals one value under a subject's key. */
export function sealValue(
  key: Buffer,
  pseudonym: string,
  eventId: string,
  path: readonly string[],
  value: JsonValue,
): Sealed {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  c.setAAD(aad(eventId, path, pseudonym));
  const ct = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()]);
  return { sealed: pseudonym, data: Buffer.concat([iv, ct, c.getAuthTag()]).toString('base64') };
}

/** Opens a sealed value; throws when the key, the place or the ciphertext is not the one it was sealed with. */
export function openValue(key: Buffer, eventId: string, path: readonly string[], s: Sealed): JsonValue {
  const raw = Buffer.from(s.data, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new SubjectError('sealed data too short');
  const d = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  d.setAAD(aad(eventId, path, s.sealed));
  d.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  const pt = Buffer.concat([d.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), d.final()]);
  return JSON.parse(pt.toString('utf8')) as JsonValue;
}

const eventIdOf = (entry: JsonObject) => (typeof entry.id === 'string' ? entry.id : '');

function setAt(root: JsonObject, path: readonly string[], value: JsonValue): void {
  let at: JsonValue = root;
  for (let i = 0; i < path.length - 1; i++) at = (at as JsonObject)[path[i]!]!;
  (at as JsonObject)[path.at(-1)!] = value;
}

/**
 * Seals the personal fields of an entry whose subject has a key in `keys` (others stay as they are)
 * and sets `subjects` to the pseudonyms of all its sealed values. Returns a new entry.
 */
export function sealEntry(
  entry: JsonObject,
  keys: ReadonlyMap<string, { pseudonym: string; key: Buffer }>,
): JsonObject {
  const out = structuredClone(entry);
  const id = eventIdOf(entry);
  for (const f of personalFields(entry)) {
    const k = keys.get(f.subject);
    if (!k) continue;
    let v: JsonValue = entry;
    for (const p of f.path) v = (v as JsonObject)[p]!;
    setAt(out, f.path, sealValue(k.key, k.pseudonym, id, f.path, v) as unknown as JsonValue);
  }
  delete out.subjects;
  const subjects = [...new Set(sealedValues(out).map((s) => s.value.sealed))].sort();
  if (subjects.length > 0) out.subjects = subjects;
  return out;
}

/**
 * The entry as people read it: each sealed value opened with its subject's key, `{"erased":
 * "<pseudonym>"}` where the key is gone, `{"unreadable": "<pseudonym>"}` where it does not open.
 */
export function openEntry(entry: JsonValue, keys: ReadonlyMap<string, Buffer>): JsonValue {
  if (!isObject(entry)) return entry;
  const sealed = sealedValues(entry);
  if (sealed.length === 0) return entry;
  const out = structuredClone(entry);
  const id = eventIdOf(entry);
  for (const s of sealed) {
    const key = keys.get(s.value.sealed);
    let opened: JsonValue;
    if (!key) opened = { erased: s.value.sealed };
    else
      try {
        opened = openValue(key, id, s.path, s.value);
      } catch {
        opened = { unreadable: s.value.sealed };
      }
    setAt(out, s.path, opened);
  }
  return out;
}
