/**
 * Where the usage engine persists what it counted: the store's usage rows, implemented by
 * src/tenancy/usage.ts. Handed to the engine as a dependency, so neither the engine nor the
 * policies on top of it know the store; never called on the request path.
 */
import type { PeriodKind } from './periods.js';

/** What a tenant has used of one metric in one UTC period. */
export interface UsageRow {
  tenantId: string;
  metric: string;
  period: PeriodKind;
  /** First day of the period, `YYYY-MM-DD`. */
  starts: string;
  used: number;
}

export interface UsageLedger {
  /** Add each delta to its row, all or none; returns the rows' totals after the addition. */
  add(deltas: readonly UsageRow[]): Promise<UsageRow[]>;
  /**
   * Rows of the given day and month (all, or those changed after `since`, the ledger's clock as
   * returned by an earlier call), and the ledger's time of this read.
   */
  current(day: string, month: string, since?: string): Promise<{ rows: UsageRow[]; readAt: string }>;
}
