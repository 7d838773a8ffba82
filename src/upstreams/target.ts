import type { Dispatcher } from 'undici';
import type { Limiter } from '../dataplane/concurrency.js';
import type { TargetHealth } from './health.js';

/** Mutable per-target counters the balancers read. One object per target, created at compile time. */
export interface TargetState {
  /** Exchanges dispatched to this target and not finished yet (requests and WebSockets). */
  inflight: number;
}

/**
 * One upstream endpoint with its connection pool, and its health record (./health.ts) when its group
 * has health settings.
 */
export interface Target {
  readonly id: string;
  /** `http://host:port` */
  readonly origin: string;
  /** Host header value when the route's host policy is `upstream`. */
  readonly hostHeader: string;
  readonly weight: number;
  /** Data-residency region (the target's, else its upstream's); undefined: none. */
  readonly region?: string | undefined;
  /** Placement labels (the target's over its upstream's); undefined: none. */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly dispatcher: Dispatcher;
  /**
   * Identity on a consistent-hash ring: stays the same across reloads and DNS changes while the
   * target stays (the origin, with a suffix for a repeated origin), so only keys of a target that
   * leaves move.
   */
  readonly ringKey: string;
  readonly state: TargetState;
  /**
   * Health record (active checks, outlier ejection), shared with the same target of the previous
   * and next configs. Undefined in groups without `healthCheck` or `outlier`: the proxy then does
   * one comparison per exchange and nothing else.
   */
  readonly health: TargetHealth | undefined;
  /**
   * The upstream's `targetConcurrency` limit for this target (one per target of one config).
   * Undefined without one: the request path then makes one comparison and nothing else.
   */
  readonly limiter?: Limiter | undefined;
}
