/**
 * The one Redis connection of a gateway, shared by every policy that keeps counters or cache
 * entries across replicas (rate limits, quotas, budgets, the cache). ioredis with auto-pipelining
 * (commands issued in one tick leave in one write), no offline queue (a command while Redis is
 * down fails at once instead of waiting), a command timeout, and a breaker: after consecutive
 * failures, commands are refused without touching the network for `openFor`, then one trial
 * command decides. A dead Redis therefore costs no latency; each policy chooses what a refused
 * command means (fail open with a local fallback, or fail closed). A reconnection (ioredis's
 * `ready`: Redis answered its ready check) closes the breaker at once: while it stays open, every
 * replica decides from its own counters, so each moment of it after Redis is back over-admits.
 *
 * The client is one server, a Redis Cluster or a Sentinel-found primary (client.ts). The breaker
 * is one for the whole deployment: in a cluster, a primary that fails (until its replica takes
 * over) opens it for every slot, not only for its own; docs/redis.md says what that means.
 */
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import {
  type ClusterTarget,
  createClient,
  describeTarget,
  type RedisClient,
  type SentinelTarget,
} from './client.js';

export type { RedisClient } from './client.js';

export interface RedisOptions {
  /** One server; or `cluster`, or `sentinel` (client.ts). */
  url?: string | undefined;
  cluster?: ClusterTarget | undefined;
  sentinel?: SentinelTarget | undefined;
  /** Prefix of every key (several gateways or environments on one Redis). */
  keyPrefix: string;
  /** Longest wait for one command, ms. */
  commandTimeout: number;
  /** Consecutive failures that open the breaker. */
  failures: number;
  /** How long the breaker stays open, ms. */
  openFor: number;
}

export class RedisUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUnavailableError';
  }
}

interface RedisMetrics {
  duration: Histogram<'result'>;
  breaker: Gauge;
  errors: Counter<'kind'>;
}

const metricsByRegistry = new WeakMap<Registry, RedisMetrics>();

function redisMetrics(r: Registry): RedisMetrics {
  let m = metricsByRegistry.get(r);
  if (m === undefined) {
    m = {
      duration: new Histogram({
        name: 'sluice_redis_command_duration_seconds',
        help: 'Latency of Redis commands (or pipelines) issued by policies, by result (ok, error).',
        labelNames: ['result'],
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
        registers: [r],
      }),
      breaker: new Gauge({
        name: 'sluice_redis_breaker_open',
        help: '1 while the Redis breaker is open: commands are refused without a round trip.',
        registers: [r],
      }),
      errors: new Counter({
        name: 'sluice_redis_errors_total',
        help: 'Redis commands that failed (timeout, connection, script) or were refused by the open breaker.',
        labelNames: ['kind'],
        registers: [r],
      }),
    };
    metricsByRegistry.set(r, m);
  }
  return m;
}

const CLOSED = 0;
const OPEN = 1;
const HALF_OPEN = 2;

export class RedisConnection {
  readonly client: RedisClient;
  readonly keyPrefix: string;
  /**
   * A Redis Cluster: every command and script must touch the keys of one slot (callers that
   * batch keys of many requests split their batches by slot, src/redis/slot.ts).
   */
  readonly cluster: boolean;
  private state = CLOSED;
  private consecutive = 0;
  private openedAt = 0;
  private trialInFlight = false;
  /** Called once when the half-open trial settles or a reconnection closes the breaker. */
  private afterTrialCallbacks: (() => void)[] = [];
  private readonly m: RedisMetrics;
  private readonly okDuration: ReturnType<Histogram<'result'>['labels']>;
  private readonly errorDuration: ReturnType<Histogram<'result'>['labels']>;
  private readonly refused: ReturnType<Counter<'kind'>['labels']>;
  readonly where: string;

  constructor(
    private readonly opts: RedisOptions,
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.keyPrefix = opts.keyPrefix;
    this.where = describeTarget(opts);
    this.cluster = opts.cluster !== undefined;
    this.m = redisMetrics(registry);
    this.okDuration = this.m.duration.labels('ok');
    this.errorDuration = this.m.duration.labels('error');
    this.refused = this.m.errors.labels('breaker_open');
    this.client = createClient(opts, { commandTimeout: opts.commandTimeout });
    let down = false;
    this.client.on('error', (err: Error) => {
      if (!down)
        this.logger.warn({ event: 'redis_error', redis: this.where, err: err.message }, 'redis error');
      down = true;
    });
    // A Redis that shuts down closes the connection without an error event, and one started again
    // quickly is reached before any reconnect attempt fails: the close alone means down.
    this.client.on('close', () => {
      down = true;
    });
    this.client.on('ready', () => {
      if (down) this.logger.info({ event: 'redis_ready', redis: this.where }, 'redis connection back');
      down = false;
      // Redis answers again: back to the shared counters now, not after `openFor` and a trial.
      if (this.state !== CLOSED) this.close_('reconnected');
    });
  }

  /**
   * Resolves once the connection is ready (true) or after `timeoutMs` (false: Redis is down; the
   * client keeps reconnecting). Without this wait, the first requests after a start find the
   * connection still opening, fail (no offline queue) and are decided by each policy's fallback.
   */
  ready(timeoutMs: number): Promise<boolean> {
    const c = this.client;
    if (c.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        c.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      c.on('ready', onReady);
    });
  }

  /** True when commands would be sent now (not refused by the open breaker). */
  get available(): boolean {
    return this.admit(Date.now(), false);
  }

  /**
   * True while the half-open trial command is in flight: a caller that can wait (the rate limiter's
   * batch) waits for it (`afterTrial`) rather than deciding without Redis, which would over-admit
   * for the length of the trial.
   */
  get trialPending(): boolean {
    return this.state === HALF_OPEN && this.trialInFlight;
  }

  /** `fn` runs once, when the pending trial settles (or a reconnection closes the breaker). */
  afterTrial(fn: () => void): void {
    this.afterTrialCallbacks.push(fn);
  }

  private trialSettled(): void {
    const fns = this.afterTrialCallbacks;
    if (fns.length === 0) return;
    this.afterTrialCallbacks = [];
    for (const fn of fns) fn();
  }

  get breakerState(): 'closed' | 'open' | 'half-open' {
    return this.state === CLOSED ? 'closed' : this.state === OPEN ? 'open' : 'half-open';
  }

  private admit(now: number, take: boolean): boolean {
    if (this.state === CLOSED) return true;
    if (this.state === OPEN) {
      if (now - this.openedAt < this.opts.openFor) return false;
      this.state = HALF_OPEN;
    }
    // Half-open: one trial command at a time.
    if (this.trialInFlight) return false;
    if (take) this.trialInFlight = true;
    return true;
  }

  /**
   * Run commands through the breaker, timed. Rejects with RedisUnavailableError at once while the
   * breaker is open, or with the command's error (which counts towards opening it).
   */
  run<T>(fn: (r: RedisClient) => Promise<T>): Promise<T> {
    if (!this.acquire()) return Promise.reject(new RedisUnavailableError('redis breaker open'));
    const t0 = performance.now();
    let p: Promise<T>;
    try {
      p = fn(this.client);
    } catch (err) {
      p = Promise.reject(err);
    }
    return p.then(
      (v) => {
        this.settle(t0, undefined);
        return v;
      },
      (err: unknown) => {
        this.settle(t0, err);
        throw err;
      },
    );
  }

  /**
   * For a caller that sends its own command with a callback (the rate limiter's batch, one command
   * per tick): take a place through the breaker. False: refused without a round trip (counted).
   * After a true, `settle` must follow once, when the command's reply or error arrives.
   */
  acquire(): boolean {
    if (this.admit(Date.now(), true)) return true;
    this.refused.inc();
    return false;
  }

  /** A command sent after `acquire` ended: `t0` is its `performance.now()` at send, `err` undefined on success. */
  settle(t0: number, err: unknown): void {
    const s = (performance.now() - t0) / 1000;
    if (err === undefined) {
      this.okDuration.observe(s);
      this.succeeded();
    } else {
      this.errorDuration.observe(s);
      this.failed(err);
    }
  }

  private succeeded(): void {
    this.consecutive = 0;
    if (this.state !== CLOSED) this.close_('trial');
  }

  private close_(why: 'trial' | 'reconnected'): void {
    this.state = CLOSED;
    this.consecutive = 0;
    this.trialInFlight = false;
    this.m.breaker.set(0);
    this.logger.info({ event: 'redis_breaker_closed', redis: this.where, why }, 'redis breaker closed');
    this.trialSettled();
  }

  private failed(err: unknown): void {
    const msg = err instanceof Error ? err.message : String(err);
    this.m.errors.labels(/timed? ?out/i.test(msg) ? 'timeout' : 'error').inc();
    this.consecutive++;
    if (this.state === HALF_OPEN || (this.state === CLOSED && this.consecutive >= this.opts.failures)) {
      this.state = OPEN;
      this.trialInFlight = false;
      this.openedAt = Date.now();
      this.m.breaker.set(1);
      this.logger.warn(
        { event: 'redis_breaker_open', redis: this.where, err: msg, openForMs: this.opts.openFor },
        'redis breaker open',
      );
      this.trialSettled();
    }
  }

  async close(): Promise<void> {
    this.client.disconnect(false);
  }
}
