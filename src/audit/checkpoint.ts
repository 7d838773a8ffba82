/**
 * Signed checkpoints: the C2SP tlog-checkpoint body in a C2SP signed note, signed with Ed25519 keys from
 * node:crypto (c2sp.org/tlog-checkpoint, c2sp.org/signed-note).
 *
 * Body:      `<origin>\n<tree size>\n<base64 root hash>\n` then extension lines; Sluice writes one,
 *            `time <ISO 8601 UTC, milliseconds>` (e.g. `time 2025-06-01T12:00:00.000Z`), so the signature
 *            covers when the checkpoint was made. Other extension lines are kept and ignored.
 * Note:      body, a blank line, then one line per signature: `— <key name> <base64(key id ‖ signature)>`.
 * Key id:    the first 4 bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte Ed25519 public key).
 * Vkey:      `<key name>+<hex key id>+<base64(0x01 ‖ public key)>`, the text an operator pins.
 *
 * Verification follows signed-note: signatures from keys not pinned (name and id not both matching) are
 * ignored, so a note can carry the old and the new key during rotation, or witnesses' cosignatures; a
 * signature from a pinned key that fails rejects the whole note; a note with no verified pinned signature is
 * rejected.
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { HASH_SIZE } from './merkle.js';

const ED25519 = 0x01;
const SIG_PREFIX = '— ';
const MAX_SIGNATURES = 100;
const TIME_PREFIX = 'time ';

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
  /** From the `time` extension line; absent when the checkpoint has none. */
  time?: Date;
  /** Extension lines other than `time`, in order. */
  extensions?: string[];
}

/** A key that signs notes. */
export interface NoteSigner {
  name: string;
  keyId: Buffer;
  privateKey: KeyObject;
  publicKey: Buffer;
}

/** A pinned key that verifies notes (parsed from a vkey). */
export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  publicKey: KeyObject;
  vkey: string;
}

export type OpenedNote =
  | { ok: true; text: string; verifiedBy: string[]; ignored: number }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'untrusted'; detail: string };

export type OpenedCheckpoint =
  | { ok: true; checkpoint: Checkpoint; text: string; verifiedBy: string[]; ignored: number }
  | { ok: false; reason: 'malformed' | 'bad-signature' | 'untrusted' | 'wrong-origin'; detail: string };

export class NoteFormatError extends Error {
  override name = 'NoteFormatError';
}

const SPACE = /\s/u;

/** signed-note: names are non-empty and hold neither Unicode spaces nor `+`. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !SPACE.test(name) && !name.includes('+') && !hasForbiddenControl(name);
}

function hasForbiddenControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return true;
  }
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

function rawPublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('only Ed25519 keys sign checkpoints');
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url');
}

function strictBase64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

/** SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]. */
export function noteKeyId(name: string, publicKey: Uint8Array): Buffer {
  if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes');
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Uint8Array.of(0x0a, ED25519))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** The signer for an Ed25519 private key under `name`. */
export function noteSigner(name: string, privateKey: KeyObject): NoteSigner {
  if (!isValidKeyName(name)) throw new NoteFormatError(`invalid key name ${JSON.stringify(name)}`);
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { name, keyId: noteKeyId(name, publicKey), privateKey, publicKey };
}

/** A fresh Ed25519 signer under `name`. */
export function generateNoteSigner(name: string): NoteSigner {
  return noteSigner(name, generateKeyPairSync('ed25519').privateKey);
}

/** `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. */
export function formatVkey(name: string, publicKey: KeyObject | Uint8Array): string {
  if (!isValidKeyName(name)) throw new NoteFormatError(`invalid key name ${JSON.stringify(name)}`);
  const raw = publicKey instanceof Uint8Array ? Buffer.from(publicKey) : rawPublicKey(publicKey);
  const key = Buffer.concat([Uint8Array.of(ED25519), raw]);
  return `${name}+${noteKeyId(name, raw).toString('hex')}+${key.toString('base64')}`;
}

/** The vkey of a signer. */
export function signerVkey(signer: NoteSigner): string {
  return formatVkey(signer.name, signer.publicKey);
}

/** Parses a vkey; throws {@link NoteFormatError} if it is malformed, not Ed25519, or its id does not match. */
export function parseVkey(vkey: string): NoteVerifier {
  // The name holds no '+' and the id is hex, so the first two '+' split; base64 may hold more of them.
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) throw new NoteFormatError('a vkey is <name>+<hex id>+<base64 key>');
  const [name, hexId, b64] = [vkey.slice(0, first), vkey.slice(first + 1, second), vkey.slice(second + 1)];
  if (!isValidKeyName(name)) throw new NoteFormatError(`invalid key name ${JSON.stringify(name)}`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new NoteFormatError('the key id is 8 lowercase hex digits');
  const key = strictBase64(b64);
  if (key?.length !== 33 || key[0] !== ED25519) {
    throw new NoteFormatError('the key is base64 of 0x01 and a 32-byte Ed25519 public key');
  }
  const raw = key.subarray(1);
  const keyId = Buffer.from(hexId, 'hex');
  if (!noteKeyId(name, raw).equals(keyId)) throw new NoteFormatError('the key id does not match the key');
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
    format: 'jwk',
  });
  return { name, keyId, publicKey, vkey };
}

function assertNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n'))
    throw new NoteFormatError('note text must end with a newline');
  if (hasForbiddenControl(text)) {
    throw new NoteFormatError('note text holds a control character or invalid Unicode');
  }
}

/** Signs note `text` (ending in a newline) with every signer, in order. */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  assertNoteText(text);
  if (signers.length === 0) throw new NoteFormatError('a signed note needs at least one signature');
  const message = Buffer.from(text, 'utf8');
  const lines = signers.map((s) => {
    const sig = sign(null, message, s.privateKey);
    return `${SIG_PREFIX}${s.name} ${Buffer.concat([s.keyId, sig]).toString('base64')}\n`;
  });
  return `${text}\n${lines.join('')}`;
}

interface ParsedSignature {
  name: string;
  keyId: Buffer;
  signature: Buffer;
}

function parseNote(note: string): { text: string; signatures: ParsedSignature[] } {
  if (hasForbiddenControl(note))
    throw new NoteFormatError('note holds a control character or invalid Unicode');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw new NoteFormatError('no blank line before the signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (!block.endsWith('\n')) throw new NoteFormatError('the last signature line does not end with a newline');
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteFormatError(`more than ${MAX_SIGNATURES} signatures`);
  const signatures = lines.map((line, i) => {
    if (!line.startsWith(SIG_PREFIX))
      throw new NoteFormatError(`signature line ${i + 1} does not start with "— "`);
    const rest = line.slice(SIG_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? '' : rest.slice(0, space);
    const sig = space < 0 ? null : strictBase64(rest.slice(space + 1));
    if (!isValidKeyName(name) || !sig || sig.length < 5) {
      throw new NoteFormatError(`signature line ${i + 1} is not "— <name> <base64>"`);
    }
    return { name, keyId: sig.subarray(0, 4), signature: sig.subarray(4) };
  });
  return { text, signatures };
}

/** Verifies a signed note against pinned verifiers, as c2sp.org/signed-note says. */
export function openNote(note: string, verifiers: readonly NoteVerifier[]): OpenedNote {
  let parsed: ReturnType<typeof parseNote>;
  try {
    parsed = parseNote(note);
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  const message = Buffer.from(parsed.text, 'utf8');
  const verifiedBy: string[] = [];
  let ignored = 0;
  for (const s of parsed.signatures) {
    const known = verifiers.find((v) => v.name === s.name && v.keyId.equals(s.keyId));
    if (!known) {
      ignored++;
      continue;
    }
    if (!verify(null, message, known.publicKey, s.signature)) {
      return {
        ok: false,
        reason: 'bad-signature',
        detail: `the signature of ${s.name} (key ${s.keyId.toString('hex')}) does not verify`,
      };
    }
    if (!verifiedBy.includes(known.vkey)) verifiedBy.push(known.vkey);
  }
  if (verifiedBy.length === 0) {
    const seen = parsed.signatures.map((s) => `${s.name}+${s.keyId.toString('hex')}`).join(', ');
    return { ok: false, reason: 'untrusted', detail: `no signature from a pinned key (signed by ${seen})` };
  }
  return { ok: true, text: parsed.text, verifiedBy, ignored };
}

/** The checkpoint note text: origin, size, base64 root, `time` line, other extensions. */
export function formatCheckpoint(cp: Checkpoint): string {
  if (cp.origin.length === 0 || cp.origin.includes('\n') || hasForbiddenControl(cp.origin)) {
    throw new NoteFormatError('the origin is one non-empty line');
  }
  if (!Number.isSafeInteger(cp.size) || cp.size < 0)
    throw new NoteFormatError('the size is a non-negative integer');
  if (cp.rootHash.length !== HASH_SIZE) throw new NoteFormatError(`the root hash is ${HASH_SIZE} bytes`);
  const lines = [cp.origin, String(cp.size), cp.rootHash.toString('base64')];
  if (cp.time) lines.push(TIME_PREFIX + cp.time.toISOString());
  for (const ext of cp.extensions ?? []) {
    if (ext.length === 0 || ext.includes('\n') || ext.startsWith(TIME_PREFIX)) {
      throw new NoteFormatError(`invalid extension line ${JSON.stringify(ext)}`);
    }
    lines.push(ext);
  }
  return `${lines.join('\n')}\n`;
}

/** Parses checkpoint note text (no signatures); throws {@link NoteFormatError}. */
export function parseCheckpoint(text: string): Checkpoint {
  assertNoteText(text);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new NoteFormatError('a checkpoint has at least three lines');
  const [origin, sizeLine, rootLine, ...rest] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) throw new NoteFormatError('empty origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeLine) || !Number.isSafeInteger(Number(sizeLine))) {
    throw new NoteFormatError(`invalid tree size ${JSON.stringify(sizeLine)}`);
  }
  const rootHash = strictBase64(rootLine);
  if (!rootHash || rootHash.length !== HASH_SIZE)
    throw new NoteFormatError('the root hash is base64 of 32 bytes');
  const cp: Checkpoint = { origin, size: Number(sizeLine), rootHash };
  const extensions: string[] = [];
  for (const line of rest) {
    if (line.length === 0) throw new NoteFormatError('empty extension line');
    if (line.startsWith(TIME_PREFIX)) {
      const iso = line.slice(TIME_PREFIX.length);
      const t = new Date(iso);
      if (cp.time || Number.isNaN(t.getTime()) || t.toISOString() !== iso) {
        throw new NoteFormatError(`invalid time line ${JSON.stringify(line)}`);
      }
      cp.time = t;
    } else {
      extensions.push(line);
    }
  }
  if (extensions.length > 0) cp.extensions = extensions;
  return cp;
}

/** Formats and signs a checkpoint with every signer (several during a key rotation). */
export function signCheckpoint(cp: Checkpoint, signers: readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(cp), signers);
}

/** Verifies a signed checkpoint against pinned keys and, when given, the expected origin. */
export function openCheckpoint(
  note: string,
  verifiers: readonly NoteVerifier[],
  origin?: string,
): OpenedCheckpoint {
  const opened = openNote(note, verifiers);
  if (!opened.ok) return opened;
  let checkpoint: Checkpoint;
  try {
    checkpoint = parseCheckpoint(opened.text);
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message };
  }
  if (origin !== undefined && checkpoint.origin !== origin) {
    return {
      ok: false,
      reason: 'wrong-origin',
      detail: `origin ${JSON.stringify(checkpoint.origin)}, not ${origin}`,
    };
  }
  return { ok: true, checkpoint, text: opened.text, verifiedBy: opened.verifiedBy, ignored: opened.ignored };
}
