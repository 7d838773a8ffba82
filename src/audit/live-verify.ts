/**
 * The audit log's verification status for the console (GET /admin/v1/audit/status): the store's
 * log checked the way `sluice audit verify --store` checks it (the bundle built from the stored
 * entries and tree nodes, then the offline verifier with the configured keys pinned), bounded in
 * cost so that a status page cannot become a full scan of a large log.
 *
 * Bound: at most LIVE_VERIFY_MAX_ENTRIES entries (the latest ones under the latest checkpoint) and
 * the latest LIVE_VERIFY_MAX_CHECKPOINTS checkpoints with the consistency proofs between them. A
 * log within both limits is verified whole (`scope: whole`, every root recomputed); a larger one
 * only in that window (`scope: window`, from/to say which indexes). The whole log stays for
 * `sluice audit verify --store` (or an export), which has no limit. Requests that arrive while a
 * check runs share it (one check at a time per log).
 *
 * The database proves nothing by itself: the signatures are checked against the configured keys
 * (the signing key's vkey and `audit.publicKeys`), never against keys found in the store.
 */
import type { Store } from '../store/store.js';
import type { JsonValue } from './canonical.js';
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { type AuditLogStore, bundleFromNodes } from './log-store.js';
import { type Problem, verifyBundle } from './verify.js';

export const LIVE_VERIFY_MAX_ENTRIES = 50_000;
export const LIVE_VERIFY_MAX_CHECKPOINTS = 1_000;
/** Problems listed in the report (the count is always exact). */
const MAX_PROBLEMS_LISTED = 100;

export interface LiveCheckpoint {
  treeSize: number;
  at: string;
  origin: string;
  rootHash: string;
  /** The signature verifies against a configured key (and names the configured origin). */
  signatureVerified: boolean;
  /** Names of the keys whose signatures verified. */
  verifiedBy: string[];
  detail?: string;
}

export interface LiveVerifyReport {
  state: 'verified' | 'failed' | 'no-checkpoint';
  ok: boolean;
  checkedAt: string;
  durationMs: number;
  scope: 'whole' | 'window';
  /** The indexes verified: [from, to). */
  from: number;
  to: number;
  /** Entries integrated so far; those past the latest checkpoint wait for the next one. */
  size: number;
  pending: number;
  entriesVerified: number;
  checkpointsVerified: number;
  problemCount: number;
  problems: Pick<Problem, 'kind' | 'index' | 'detail'>[];
  checkpoint: LiveCheckpoint | null;
  limits: { entries: number; checkpoints: number };
}

interface Inputs {
  store: Store;
  log: LiveLog;
  origin: string;
  trustedKeys: readonly string[];
  now?: () => number;
  /** The bounds (tests make them small); default the constants above. */
  maxEntries?: number;
  maxCheckpoints?: number;
}

/** What the check reads of the log besides the store's tables. */
export type LiveLog = Pick<AuditLogStore, 'size' | 'entries' | 'minIndex'>;

const running = new WeakMap<LiveLog, Promise<LiveVerifyReport>>();

/** Verifies the store's log (bounded, see above); concurrent callers share one run. */
export function verifyLiveLog(inputs: Inputs): Promise<LiveVerifyReport> {
  const current = running.get(inputs.log);
  if (current) return current;
  const run = check(inputs).finally(() => running.delete(inputs.log));
  running.set(inputs.log, run);
  return run;
}

async function check({
  store,
  log,
  origin,
  trustedKeys,
  now = Date.now,
  maxEntries = LIVE_VERIFY_MAX_ENTRIES,
  maxCheckpoints = LIVE_VERIFY_MAX_CHECKPOINTS,
}: Inputs): Promise<LiveVerifyReport> {
  const started = now();
  const limits = { entries: maxEntries, checkpoints: maxCheckpoints };
  const size = await log.size();
  const rows = await store.query<{ tree_size: string | number; note: string; at: unknown }>(
    'SELECT tree_size, note, at FROM audit_checkpoints ORDER BY tree_size DESC LIMIT $1',
    [maxCheckpoints + 1],
  );
  const allCheckpointsHere = rows.length <= maxCheckpoints;
  const checkpoints = rows
    .slice(0, maxCheckpoints)
    .reverse()
    .map((r) => ({
      treeSize: Number(r.tree_size),
      note: r.note,
      at: new Date(r.at as string).toISOString(),
    }));
  const latest = checkpoints.at(-1);
  const base = { checkedAt: new Date(started).toISOString(), size, limits };
  if (!latest)
    return {
      ...base,
      state: 'no-checkpoint',
      ok: true,
      durationMs: now() - started,
      scope: 'whole',
      from: 0,
      to: 0,
      pending: size,
      entriesVerified: 0,
      checkpointsVerified: 0,
      problemCount: 0,
      problems: [],
      checkpoint: null,
    };

  const min = await log.minIndex();
  const to = latest.treeSize;
  const from = Math.max(min, to - maxEntries);
  const entries: { index: number; entry: JsonValue }[] = [];
  for (let at = from; at < to; ) {
    const page = await log.entries(at, to, 5000);
    if (page.length === 0) break;
    for (const e of page) entries.push({ index: e.seq, entry: e.entry });
    at = page.at(-1)!.seq + 1;
  }
  const whole = from === 0 && allCheckpointsHere;
  const bundle = await bundleFromNodes(store, {
    origin,
    publicKeys: [...trustedKeys],
    checkpoints: checkpoints.map((c) => ({ treeSize: c.treeSize, note: c.note })),
    entries,
    complete: whole,
  });
  const report = verifyBundle(bundle, { trustedKeys });
  const problems: Pick<Problem, 'kind' | 'index' | 'detail'>[] = report.problems.map((p) => ({
    kind: p.kind,
    ...(p.index === undefined ? {} : { index: p.index }),
    detail: p.detail,
  }));
  // A window is not a complete bundle, so the verifier does not look for holes in it: an index of
  // [from, to) with no entry is a deleted one (unless the verifier already named it).
  if (!whole) {
    const present = new Set(entries.map((e) => e.index));
    const named = new Set(problems.map((p) => p.index));
    for (let i = from; i < to; i++)
      if (!present.has(i) && !named.has(i))
        problems.push({ kind: 'removed', index: i, detail: `no entry at index ${i} in the hot store` });
  }

  const verifiers = trustedKeys.map((k) => parseVkey(k));
  const opened = openCheckpoint(latest.note, verifiers, origin);
  const firstLine = latest.note.slice(0, latest.note.indexOf('\n'));
  const checkpoint: LiveCheckpoint = opened.ok
    ? {
        treeSize: opened.checkpoint.size,
        at: opened.checkpoint.time?.toISOString() ?? latest.at,
        origin: opened.checkpoint.origin,
        rootHash: opened.checkpoint.rootHash.toString('base64'),
        signatureVerified: true,
        verifiedBy: opened.verifiedBy,
      }
    : {
        treeSize: latest.treeSize,
        at: latest.at,
        origin: firstLine,
        rootHash: latest.note.split('\n')[2] ?? '',
        signatureVerified: false,
        verifiedBy: [],
        detail: `${opened.reason}: ${opened.detail}`,
      };
  const ok = problems.length === 0 && report.ok && checkpoint.signatureVerified;
  return {
    ...base,
    state: ok ? 'verified' : 'failed',
    ok,
    durationMs: now() - started,
    scope: whole ? 'whole' : 'window',
    from,
    to,
    pending: Math.max(0, size - to),
    entriesVerified: report.entriesVerified,
    checkpointsVerified: report.checkpointsVerified,
    problemCount: problems.length,
    problems: problems.slice(0, MAX_PROBLEMS_LISTED),
    checkpoint,
  };
}
