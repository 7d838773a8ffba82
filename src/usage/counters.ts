/** The vocabulary of the usage engine and its two counter backends (local-counters.ts, redis-counters.ts). */
import type { Period } from './periods.js';

/** One counter a request is checked against and counted on. */
export interface CounterItem {
  /** `quota:<name>` or `cost:<provider>`. */
  readonly metric: string;
  readonly period: Period;
  /** The most the counter may reach; -1 for none (counted only). */
  readonly limit: number;
  /** What must still fit: allowed when used + need <= limit (1 for "used < limit" before units are known). */
  readonly need: number;
  /** What to add when every counter fits (0 for a check only). */
  readonly inc: number;
}

export type TakeResult =
  | { readonly ok: true; readonly values: readonly number[] }
  /** Refused: `index` is the item over its limit, `used` its value. */
  | { readonly ok: false; readonly index: number; readonly used: number }
  /** Redis failed and the caller chose to fail closed. */
  | { readonly ok: false; readonly index: -1; readonly used: 0; readonly unavailable: true };

/**
 * A counter's key in this process: period first, so that pruning past periods is a prefix test.
 * The same key names the counter's seed and its pending delta.
 */
export function localKey(tenant: string, metric: string, periodId: string): string {
  return `${periodId}\n${tenant}\n${metric}`;
}

/** Counters outlive their period by this much in Redis (a late admin read, clock skew between replicas). */
export const GRACE_SECONDS = 2 * 86_400;
