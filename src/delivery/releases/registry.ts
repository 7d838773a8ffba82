/**
 * The gateway's release slots, by release name: created when a config first declares a release and
 * kept across reloads (a reload must not put everyone back on the stable version for a moment).
 */
import { createHash } from 'node:crypto';
import type { DeclaredRelease } from './actions.js';
import type { ReleaseConfig } from './schema.js';
import { ReleaseSlot } from './slot.js';

export class ReleaseSlots {
  private readonly slots = new Map<string, ReleaseSlot>();

  slot(name: string): ReleaseSlot {
    let s = this.slots.get(name);
    if (s === undefined) {
      s = new ReleaseSlot(name);
      this.slots.set(name, s);
    }
    return s;
  }

  get(name: string): ReleaseSlot | undefined {
    return this.slots.get(name);
  }

  all(): IterableIterator<ReleaseSlot> {
    return this.slots.values();
  }
}

/** The releases a config declares, with the hash that tells a changed spec from the same one. */
export function declaredReleases(
  releases: Record<string, ReleaseConfig> | undefined,
): Map<string, DeclaredRelease> {
  const out = new Map<string, DeclaredRelease>();
  for (const [name, spec] of Object.entries(releases ?? {}))
    out.set(name, { spec, specHash: specHash(spec), bucketing: spec.bucketing ?? 'v1' });
  return out;
}

export function specHash(spec: ReleaseConfig): string {
  return createHash('sha256').update(canonical(spec)).digest('hex').slice(0, 16);
}

/** JSON with object keys sorted (the same spec in another key order hashes the same). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}
