/**
 * Retry policy of a route (compiled once) and its retry budget. The proxy consults it only on
 * routes with `retry.attempts > 1`; other routes carry `undefined` and pay one comparison.
 */
import type { IncomingMessage } from 'node:http';
import type { Counter } from 'prom-client';
import type { CompiledRoute } from '../config/compile.js';
import type { RetryConfig } from '../config/schema.js';
import { bytes, ms } from '../config/units.js';
import type { UpstreamGroup } from '../upstreams/group.js';
import type { Target } from '../upstreams/target.js';

const idempotent = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'];
const defaultOn: RetryConfig['on'] = ['connect', 'reset', 502, 503, 504];

/** Budget window: 10 one-second buckets. */
const buckets = 10;

/**
 * Retries allowed over the last 10 s: `ratio` × requests + `minPerSecond` × 10 (a sliding window
 * of one-second buckets). Each retry spends one; when none is left the failure is passed on.
 */
export class RetryBudget {
  private readonly requests = new Float64Array(buckets);
  private readonly retries = new Float64Array(buckets);
  private second = 0;
  private requestSum = 0;
  private retrySum = 0;

  constructor(
    readonly ratio: number,
    readonly minPerSecond: number,
    private readonly now: () => number = () => Math.floor(performance.now() / 1000),
  ) {}

  private roll(): number {
    const s = this.now();
    if (s !== this.second) {
      const gap = Math.min(s - this.second, buckets);
      for (let i = 1; i <= gap; i++) {
        const b = (this.second + i) % buckets;
        this.requestSum -= this.requests[b]!;
        this.retrySum -= this.retries[b]!;
        this.requests[b] = 0;
        this.retries[b] = 0;
      }
      this.second = s;
    }
    return s % buckets;
  }

  /** A request on the route (first tries only). */
  request(): void {
    const b = this.roll();
    this.requests[b]!++;
    this.requestSum++;
  }

  /** Take one retry from the budget; false when it is spent. */
  tryRetry(): boolean {
    const b = this.roll();
    if (this.retrySum >= this.ratio * this.requestSum + this.minPerSecond * buckets) return false;
    this.retries[b]!++;
    this.retrySum++;
    return true;
  }
}

export interface RetryMetrics {
  retries: Counter<'route' | 'reason'>;
  exhausted: Counter<'route'>;
}

export class RetryPolicy {
  readonly attempts: number;
  readonly onConnect: boolean;
  readonly onReset: boolean;
  readonly onTimeout: boolean;
  readonly statuses: ReadonlySet<number>;
  readonly methods: ReadonlySet<string>;
  readonly baseMs: number;
  readonly maxMs: number;
  /** 0: the route's firstByte timeout applies to each try. */
  readonly perTryTimeout: number;
  readonly bufferBody: number;
  readonly budget: RetryBudget;

  constructor(
    c: RetryConfig,
    readonly route: string,
    private readonly metrics: RetryMetrics,
  ) {
    const on = c.on ?? defaultOn ?? [];
    this.attempts = c.attempts;
    this.onConnect = on.includes('connect');
    this.onReset = on.includes('reset');
    this.onTimeout = on.includes('timeout');
    this.statuses = new Set(on.filter((x): x is number => typeof x === 'number'));
    this.methods = new Set(c.methods ?? idempotent);
    this.baseMs = ms(c.backoff?.base, 25);
    this.maxMs = ms(c.backoff?.max, 250);
    this.perTryTimeout = ms(c.perTryTimeout, 0);
    this.bufferBody = bytes(c.bufferBody, 0);
    this.budget = new RetryBudget(c.budget?.ratio ?? 0.2, c.budget?.minPerSecond ?? 10);
  }

  /** Whether a failure of kind `kind` (classifyUpstreamError) may be retried. */
  retriesKind(kind: string): boolean {
    if (kind === 'connect' || kind === 'timeout_connect') return this.onConnect;
    if (kind === 'reset') return this.onReset;
    if (kind === 'timeout_first_byte') return this.onTimeout;
    return false;
  }

  /** Full jitter: random(0, min(max, base·2^(retry-1))). `retry` counts from 1. */
  backoff(retry: number): number {
    return Math.random() * Math.min(this.maxMs, this.baseMs * 2 ** (retry - 1));
  }

  /** Spend one retry from the budget; counts the refusal when it is spent. */
  takeBudget(): boolean {
    if (this.budget.tryRetry()) return true;
    this.metrics.exhausted.labels(this.route).inc();
    return false;
  }

  /**
   * The target of the next try: another one when there is one (a few picks: balancers rotate or
   * randomise), from the group the route's requests go to now (failover), or, on a released route,
   * from the version the request was assigned: a retry never crosses from one version to the other
   * (it would hide the candidate's failures from the analysis). On a residency- or placement-bound
   * route the request was placed in `cell` on group `placed`: the retry picks there, in that cell only.
   */
  nextTarget(
    route: CompiledRoute,
    req: IncomingMessage,
    failed: Target,
    version: UpstreamGroup | undefined,
    placed?: UpstreamGroup,
    cell?: string,
  ): Target | undefined {
    if (cell !== undefined) {
      const g = placed!;
      let next = g.pickIn(cell, req);
      for (let i = 0; i < 3 && next === failed; i++) next = g.pickIn(cell, req);
      return next;
    }
    const group = version ?? route.failover?.active ?? route.upstream!;
    let next = group.pick(req);
    for (let i = 0; i < 3 && next === failed; i++) next = group.pick(req);
    return next;
  }

  counted(reason: string): void {
    this.metrics.retries.labels(this.route, reason).inc();
  }
}

/**
 * `retry-after` of a response in milliseconds (delta-seconds or an HTTP date), or undefined when
 * absent or unreadable.
 */
export function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^[0-9]+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}
