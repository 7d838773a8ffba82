/**
 * Usage periods (of quotas and budgets) are UTC calendar periods: a day runs from 00:00:00 UTC to the next midnight, a month
 * from the 1st 00:00 UTC to the 1st of the next month. Every replica computes the same period for
 * the same instant without talking to the others, whatever its local time zone.
 */

export type PeriodKind = 'day' | 'month';

export interface Period {
  readonly kind: PeriodKind;
  /** `2026-11-24` (day) or `2026-11` (month): part of the counter's key. */
  readonly id: string;
  /** The first day of the period, `YYYY-MM-DD` (the store's `starts` column). */
  readonly starts: string;
  /** Epoch ms when the period begins. */
  readonly startsAt: number;
  /** Epoch ms when the next period begins. */
  readonly endsAt: number;
}

const pad = (n: number) => (n < 10 ? `0${n}` : String(n));

export function periodOf(kind: PeriodKind, nowMs: number): Period {
  const d = new Date(nowMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  const month = `${y}-${pad(m + 1)}`;
  if (kind === 'month')
    return {
      kind,
      id: month,
      starts: `${month}-01`,
      startsAt: Date.UTC(y, m, 1),
      endsAt: Date.UTC(y, m + 1, 1),
    };
  const day = `${month}-${pad(d.getUTCDate())}`;
  return {
    kind,
    id: day,
    starts: day,
    startsAt: Date.UTC(y, m, d.getUTCDate()),
    endsAt: Date.UTC(y, m, d.getUTCDate() + 1),
  };
}

/** Whole seconds until the period ends (at least 1): what `Retry-After` says. */
export function secondsUntil(endsAt: number, nowMs: number): number {
  return Math.max(1, Math.ceil((endsAt - nowMs) / 1000));
}

/** The period a store row (`period`, `starts`) belongs to, as its id. */
export function periodIdOf(kind: PeriodKind, starts: string): string {
  return kind === 'month' ? starts.slice(0, 7) : starts.slice(0, 10);
}

/**
 * Caches the current day and month so the hot path computes them once per period, not per request
 * (a Date and string formatting per request otherwise).
 */
export class PeriodClock {
  private day: Period;
  private month: Period;

  constructor(readonly now: () => number = Date.now) {
    const t = now();
    this.day = periodOf('day', t);
    this.month = periodOf('month', t);
  }

  current(kind: PeriodKind, t: number = this.now()): Period {
    if (kind === 'day') {
      if (t >= this.day.endsAt || t < this.day.startsAt) this.day = periodOf('day', t);
      return this.day;
    }
    if (t >= this.month.endsAt || t < this.month.startsAt) this.month = periodOf('month', t);
    return this.month;
  }
}
