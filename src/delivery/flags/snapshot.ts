/**
 * The in-memory flag snapshot the hot path reads: every flag compiled (evaluate.ts), loaded in one
 * read, rebuilt on a 'sluice_flags' notification or a resync (store/snapshot-source.ts), so a
 * change reaches every replica within the notification's latency plus one load. A flag unchanged
 * since the previous snapshot keeps its compiled form.
 */
import { createHash } from 'node:crypto';
import { type ReloadingOptions, ReloadingSnapshot } from '../../store/snapshot-source.js';
import type { Store } from '../../store/store.js';
import { type CompiledFlag, compileFlag } from './evaluate.js';
import { toStoredFlag } from './store.js';

export const FLAGS_CHANNEL = 'sluice_flags';

export interface FlagSnapshot {
  readonly version: number;
  readonly loadedAt: number;
  /** Changes whenever any flag's definition does (key, revision, update time of every flag). */
  readonly etag: string;
  readonly flags: ReadonlyMap<string, CompiledFlag>;
  /** The keys, sorted (OFREP bulk answers in this order). */
  readonly keys: readonly string[];
}

/** What the data plane reads: the current snapshot, a field read. */
export interface FlagReader {
  readonly current: FlagSnapshot;
}

export const EMPTY_FLAGS: FlagSnapshot = Object.freeze({
  version: 0,
  loadedAt: 0,
  etag: 'empty',
  flags: new Map(),
  keys: [],
});

/** A reader of no flags (compile-only callers, gateways without a store). */
export const noFlags: FlagReader = { current: EMPTY_FLAGS };

/** A snapshot of the given compiled flags (tests, and the loader below). */
export function flagSnapshot(
  version: number,
  flags: readonly CompiledFlag[],
  stamps: string[] = [],
): FlagSnapshot {
  const map = new Map(flags.map((f) => [f.key, f]));
  const keys = [...map.keys()].sort();
  const h = createHash('sha256');
  for (const k of keys) h.update(`${k}\u0000${map.get(k)!.revision}\u0000`);
  for (const s of stamps) h.update(s);
  return Object.freeze({
    version,
    loadedAt: Date.now(),
    etag: h.digest('base64url').slice(0, 22),
    flags: map,
    keys,
  });
}

const stampOf = new WeakMap<CompiledFlag, number>();

export async function loadFlags(
  store: Store,
  version: number,
  previous: FlagSnapshot,
  onBadFlag?: (key: string, err: Error) => void,
): Promise<FlagSnapshot> {
  const rows = await store.query<Parameters<typeof toStoredFlag>[0]>(
    'SELECT key, spec, bucketing, revision, created_at, updated_at, updated_by FROM flags',
  );
  const flags: CompiledFlag[] = [];
  const stamps: string[] = [];
  for (const r of rows) {
    const f = toStoredFlag(r);
    const at = f.updatedAt.getTime();
    const old = previous.flags.get(f.key);
    if (old !== undefined && old.revision === f.revision && stampOf.get(old) === at) {
      flags.push(old);
    } else {
      try {
        const c = compileFlag(f.key, f.spec, f.revision);
        stampOf.set(c, at);
        flags.push(c);
      } catch (err) {
        onBadFlag?.(f.key, err instanceof Error ? err : new Error(String(err)));
        continue;
      }
    }
    stamps.push(`${f.key}@${at}`);
  }
  stamps.sort();
  return flagSnapshot(version, flags, stamps);
}

export class FlagSource extends ReloadingSnapshot<FlagSnapshot> implements FlagReader {
  constructor(store: Store, opts: ReloadingOptions & { onBadFlag?: (key: string, err: Error) => void } = {}) {
    super(
      'flag snapshot',
      store,
      FLAGS_CHANNEL,
      (s, v, prev) => loadFlags(s, v, prev, opts.onBadFlag),
      EMPTY_FLAGS,
      opts,
    );
  }
}
