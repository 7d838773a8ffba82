/**
 * The export bundle: everything needed to verify an audit log (or a slice of one) offline, with no network
 * and no Sluice server: the entries, an inclusion proof of each to the latest checkpoint, the signed
 * checkpoints, consistency proofs between successive checkpoints, and the public keys.
 *
 * Hashes are base64 (as in the checkpoint's root line). `createBundle` is the exporter's side; `verifyBundle`
 * (verify.ts) is the auditor's.
 */
import { canonicalBytes, type JsonValue } from './canonical.js';
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { consistencyProof, type Hash, inclusionProof, leafHash, type SubtreeHasher } from './merkle.js';

export const BUNDLE_FORMAT = 'sluice-audit-bundle/v1';

export interface BundleEntry {
  /** The entry's position in the log (0-based). */
  index: number;
  /** The entry, whose RFC 8785 canonical form is the leaf's data (absent when redacted). */
  entry?: JsonValue;
  /** PATH(index, D[latest checkpoint size]), base64 hashes, deepest first. */
  proof: string[];
  /**
   * An archived entry past its retention (retention.ts): `entry` is gone and `leafHash` (base64) stands
   * in for it, so the proof still verifies; the verifier reports it as redacted, not as tampering.
   */
  redacted?: true;
  leafHash?: string;
  /** Archives: when the store integrated the entry (ISO 8601), for retention; not covered by any proof. */
  at?: string;
}

export interface BundleConsistency {
  from: number;
  to: number;
  /** PROOF(from, D[to]), base64 hashes. */
  proof: string[];
}

export interface AuditBundle {
  format: typeof BUNDLE_FORMAT;
  origin: string;
  /** Vkeys of the log's keys (current and rotated-out ones); a verifier should pin its own copy. */
  publicKeys: string[];
  /** Signed checkpoint notes, in the order the log signed them (non-decreasing size). */
  checkpoints: string[];
  consistency: BundleConsistency[];
  /**
   * True when `entries` holds every index in [0, latest size): then a missing index is a removed entry and
   * every checkpoint's root is recomputed. False for a selection (one tenant, a time range).
   */
  complete: boolean;
  /** An archive segment (retention.ts): `entries` holds every index in [from, to), redacted or not. */
  segment?: { from: number; to: number };
  entries: BundleEntry[];
}

/** The leaf hash of an audit entry: SHA-256(0x00 ‖ JCS(entry)). */
export function entryLeafHash(entry: unknown): Buffer {
  return leafHash(canonicalBytes(entry));
}

const b64 = (hashes: readonly Hash[]) => hashes.map((h) => Buffer.from(h).toString('base64'));

export interface CreateBundleInput {
  origin: string;
  publicKeys: string[];
  /** Signed checkpoints, oldest first; the last one is the size every inclusion proof is made for. */
  checkpoints: string[];
  /**
   * Every leaf hash of the log in [0, latest size), or a hasher of subtrees (the store's nodes,
   * nodes.ts) that can answer every range the proofs ask for.
   */
  leafHashes: readonly Hash[] | SubtreeHasher;
  /**
   * The checkpoints' sizes as the store records them. Given, the notes are taken as they are and
   * left to the verifier to judge (a store's export must show a forged note, not fail on it);
   * without, each note is opened under `publicKeys` and a bad one throws.
   */
  sizes?: readonly number[];
  /** The entries to export with their indexes; all of them when `complete`. */
  entries: { index: number; entry: JsonValue }[];
  complete: boolean;
}

/** Builds a bundle; throws if a checkpoint does not verify under `publicKeys` or an entry is out of range. */
export function createBundle(input: CreateBundleInput): AuditBundle {
  const verifiers = input.publicKeys.map(parseVkey);
  const sizes =
    input.sizes ??
    input.checkpoints.map((note, i) => {
      const opened = openCheckpoint(note, verifiers, input.origin);
      if (!opened.ok) throw new Error(`checkpoint ${i}: ${opened.detail}`);
      return opened.checkpoint.size;
    });
  const latest = sizes.at(-1);
  if (latest === undefined) throw new Error('a bundle needs at least one checkpoint');
  const leaves = input.leafHashes;
  if (typeof leaves !== 'function' && latest > leaves.length)
    throw new Error(`checkpoint size ${latest} > ${leaves.length} leaves`);
  const consistency: BundleConsistency[] = [];
  for (let i = 1; i < sizes.length; i++) {
    const from = sizes[i - 1]!;
    const to = sizes[i]!;
    consistency.push({ from, to, proof: b64(consistencyProof(input.leafHashes, from, to)) });
  }
  const entries = input.entries.map(({ index, entry }) => {
    if (index >= latest)
      throw new Error(`entry ${index} is not covered by the latest checkpoint (size ${latest})`);
    return { index, entry, proof: b64(inclusionProof(input.leafHashes, index, latest)) };
  });
  return {
    format: BUNDLE_FORMAT,
    origin: input.origin,
    publicKeys: [...input.publicKeys],
    checkpoints: [...input.checkpoints],
    consistency,
    complete: input.complete,
    entries,
  };
}
