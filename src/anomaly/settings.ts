/** `anomaly:` resolved: defaults filled in, per-upstream overrides merged (docs/anomaly.md). */
import { ms } from '../config/units.js';
import type { DetectorParams } from './detector.js';
import type { AnomalyConfig, AnomalyTuning } from './schema.js';

export const SIGNALS = ['latency', 'errors', 'cost'] as const;
export type SignalName = (typeof SIGNALS)[number];

/** The unit of each signal's value (events, logs, docs). */
export const UNITS: Record<SignalName, string> = {
  latency: 'ms',
  errors: 'ratio',
  cost: 'currency/request',
};

const floors: Record<SignalName, { minRelative: number; minAbsolute: number }> = {
  latency: { minRelative: 0.2, minAbsolute: 5 },
  errors: { minRelative: 0, minAbsolute: 0.05 },
  cost: { minRelative: 0.2, minAbsolute: 0 },
};

export type AnomalyAction = 'failover' | 'rollback';

export interface SeriesSettings {
  readonly minRequests: number;
  /** `action`: what a start of an anomaly does besides reporting it (./actions.ts). */
  readonly action: AnomalyAction | undefined;
  /** Per signal: its detector parameters, or undefined when the signal is off. */
  readonly signals: Record<SignalName, DetectorParams | undefined>;
}

export interface ResolvedAnomaly {
  readonly intervalMs: number;
  /** The settings of a route's series, by its upstream group. */
  forUpstream(upstream: string): SeriesSettings;
}

function resolveTuning(t: AnomalyTuning): SeriesSettings {
  const signals = {} as Record<SignalName, DetectorParams | undefined>;
  for (const s of SIGNALS) {
    const o = t[s];
    signals[s] =
      o?.enabled === false
        ? undefined
        : {
            alpha: t.alpha ?? 0.05,
            bands: o?.bands ?? t.bands ?? 4,
            minRelative: o?.minRelative ?? floors[s].minRelative,
            minAbsolute: o?.minAbsolute ?? floors[s].minAbsolute,
            warmup: t.warmup ?? 30,
            enterAfter: t.enterAfter ?? 3,
            leaveAfter: t.leaveAfter ?? 5,
          };
  }
  return { minRequests: t.minRequests ?? 20, action: t.action, signals };
}

/** Undefined when detection is off (no `anomaly`, or `enabled: false`). */
export function resolveAnomaly(c: AnomalyConfig | undefined): ResolvedAnomaly | undefined {
  if (c === undefined || c.enabled === false) return undefined;
  const { upstreams, interval: _i, enabled: _e, ...global } = c;
  const base = resolveTuning(global);
  const per = new Map<string, SeriesSettings>();
  for (const [name, o] of Object.entries(upstreams ?? {})) {
    // An override replaces single settings, and single fields of a signal, of the global ones.
    const merged: AnomalyTuning = { ...global, ...o };
    for (const s of SIGNALS)
      if (global[s] !== undefined || o[s] !== undefined) merged[s] = { ...global[s], ...o[s] };
    per.set(name, resolveTuning(merged));
  }
  return {
    intervalMs: Math.max(ms(c.interval, 10_000), 10),
    forUpstream: (u) => per.get(u) ?? base,
  };
}
