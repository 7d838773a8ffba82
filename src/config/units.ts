/**
 * Durations and sizes as written in config (the strings `Duration` and `Size` in ./shared-schema.ts
 * admit), turned into numbers once at compile time.
 */
const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const sizeUnits: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

export function ms(v: number | string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(v);
  if (!m) throw new Error(`not a duration: ${v}`);
  return Math.round(Number(m[1]) * (durationUnits[m[2]!] ?? 1));
}

export function bytes(v: number | string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v === 'number') return v;
  const m = /^([0-9]+)(b|kb|mb|gb)$/.exec(v);
  if (!m) throw new Error(`not a size: ${v}`);
  return Number(m[1]) * (sizeUnits[m[2]!] ?? 1);
}
