/**
 * What the request path adds to, per route × upstream: four numbers, incremented in place (no
 * allocation, no lookup: the route holds its cell from compile time). The anomaly timer reads and
 * zeroes them once per interval.
 */
export class AnomalyCell {
  /** Answered requests in this interval (clients that left, 499, are not counted). */
  requests = 0;
  /** Of those, answers with a 5xx status (the upstream's, or Sluice's 502/503/504 for it). */
  errors = 0;
  latencyMsSum = 0;
  /** Spend counted by the route's `cost` policy in this interval, in currency units. */
  cost = 0;

  record(status: number, seconds: number): void {
    if (status === 499) return;
    this.requests++;
    if (status >= 500) this.errors++;
    this.latencyMsSum += seconds * 1000;
  }

  addCost(amount: number): void {
    this.cost += amount;
  }
}
