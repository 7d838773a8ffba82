/**
 * The Redis side of rate limits: the decisions asked for in one tick of the event loop leave as one
 * EVALSHA of the batch script (gcra.ts), encoded once, in one write, answered in one reply.
 *
 * Why not one command per request through ioredis's auto-pipelining: the profile of the bench's
 * Redis scenario showed the per-request cost in ioredis (a Command, its promise, the Script
 * wrapper's catch, the pipeline's callback and nextTick, the encoding of each command) and in the
 * breaker's timing (a histogram observation and two closures per request), not in the round trip.
 * Here a request costs a few array pushes and the one promise the policy contract asks for (made
 * with a shared executor: no closure per request); the Command, its promise, the encoding and the
 * breaker's bookkeeping are per batch. ioredis still owns the connection, the reply parser, the
 * command timeout and reconnection: only the batching is ours.
 *
 * Breaker and failures: a batch takes one place through the connection's breaker. Refused (open),
 * failed or timed out, every request of the batch is decided by its policy's fallback (local
 * counters or 503), as one request was before. While the breaker's half-open trial is in flight
 * (a Redis that stopped answering may be back), a batch waits for the trial instead of deciding
 * locally: otherwise each replica would admit from its own counters for the length of the trial.
 * A reconnection closes the breaker (connection.ts), so a Redis that is back is used at once.
 */
import { Command } from 'ioredis';
import type { RedisConnection } from '../../redis/connection.js';
import { LuaScript } from '../../redis/lua-script.js';
import { keySlot } from '../../redis/slot.js';
import type { RequestContext, RequestVerdict } from '../policy.js';
import { GCRA_LUA } from './gcra.js';

/** A request's limits as the script reads them: `[n, interval1, tolerance1, ...]` (µs), as strings. */
export interface BatchedLimits {
  readonly batchArgv: readonly string[];
}

/** The policy a request came from: it turns Redis's answer (or its absence) into the verdict. */
export interface BatchOwner {
  /** Redis decided: this request's part of `reply` starts at `at` (`2 + 2 × keys.length` numbers). */
  decided(
    ctx: RequestContext,
    set: BatchedLimits,
    keys: string[],
    reply: readonly number[],
    at: number,
  ): RequestVerdict;
  /** Redis did not answer (breaker open, error, timeout): the policy's fallback. */
  withoutRedis(ctx: RequestContext, set: BatchedLimits, keys: string[]): RequestVerdict;
}

/** One script call keeps the server busy for a bounded time: past this many requests, a batch leaves at once. */
const MAX_REQUESTS = 256;
/** Batches kept for reuse (one collecting, a few in flight). */
const POOL = 4;

type Resolve = (v: RequestVerdict) => void;
type Reject = (err: unknown) => void;

// The policy contract wants a promise per request; a shared executor hands its resolvers over
// without allocating a closure per request.
let capturedResolve: Resolve | undefined;
let capturedReject: Reject | undefined;
function capture(resolve: Resolve, reject: Reject): void {
  capturedResolve = resolve;
  capturedReject = reject;
}

class Batch {
  n = 0;
  readonly owners: BatchOwner[] = [];
  readonly ctxs: RequestContext[] = [];
  readonly sets: BatchedLimits[] = [];
  readonly keys: string[][] = [];
  readonly resolves: Resolve[] = [];
  readonly rejects: Reject[] = [];
  /** KEYS and the per-request part of ARGV, appended as requests arrive. */
  readonly keyArgs: string[] = [];
  readonly limitArgs: string[] = [];
  t0 = 0;
  resent = false;
  /** Made once per batch object (reused): no closure per request or per send. */
  readonly ok: (reply: unknown) => void;
  readonly fail: (err: unknown) => void;

  constructor(b: GcraBatcher) {
    this.ok = (reply) => b.answered(this, reply as number[]);
    this.fail = (err) => b.failed(this, err);
  }

  clear(): void {
    this.n = 0;
    this.owners.length = 0;
    this.ctxs.length = 0;
    this.sets.length = 0;
    this.keys.length = 0;
    this.resolves.length = 0;
    this.rejects.length = 0;
    this.keyArgs.length = 0;
    this.limitArgs.length = 0;
    this.resent = false;
  }
}

function flushLater(b: GcraBatcher): void {
  b.flush();
}

/** One per Redis connection (gateway-lifetime): every rate-limited route's requests share its batches. */
export class GcraBatcher {
  /**
   * The batches collecting, by Redis Cluster slot (one server: all in slot 0). A script may only
   * touch one slot's keys in a cluster; a request's keys share one (key-slots.ts checks it at
   * load), those of different requests need not, so a tick's requests leave as one script call
   * per slot they use.
   */
  private readonly collecting = new Map<number, Batch>();
  private readonly bySlot: boolean;
  private readonly pool: Batch[] = [];
  private scheduled = false;
  private waitingForTrial = false;
  /** The script is known to the server behind the current connection (else EVAL sends its text). */
  private loaded = false;
  /**
   * The script's text and SHA-1. Sent by hand below, not by `LuaScript.run`: the batch needs its
   * own command with a callback per slot (one per tick), not a promise per call.
   */
  private readonly script = new LuaScript(GCRA_LUA);
  private readonly afterTrial = (): void => {
    this.waitingForTrial = false;
    this.flush();
  };

  constructor(private readonly redis: RedisConnection) {
    this.bySlot = redis.cluster;
    // A new connection may be to a restarted Redis, which has no scripts.
    redis.client.on('ready', () => {
      this.loaded = false;
    });
  }

  /** False while the breaker is open (no trial due): decide without Redis, now, without a promise. */
  get accepting(): boolean {
    return this.redis.available || this.redis.trialPending;
  }

  /** Queues a request's decision for this tick's batch. */
  decide(
    owner: BatchOwner,
    ctx: RequestContext,
    set: BatchedLimits,
    keys: string[],
  ): Promise<RequestVerdict> {
    const slot = this.bySlot ? keySlot(keys[0]!) : 0;
    let b = this.collecting.get(slot);
    if (b === undefined) {
      b = this.pool.pop() ?? new Batch(this);
      this.collecting.set(slot, b);
    }
    b.owners.push(owner);
    b.ctxs.push(ctx);
    b.sets.push(set);
    b.keys.push(keys);
    for (let i = 0; i < keys.length; i++) b.keyArgs.push(keys[i]!);
    const argv = set.batchArgv;
    for (let i = 0; i < argv.length; i++) b.limitArgs.push(argv[i]!);
    const p = new Promise<RequestVerdict>(capture);
    b.resolves.push(capturedResolve!);
    b.rejects.push(capturedReject!);
    if (++b.n >= MAX_REQUESTS) this.flushOne(slot, b);
    else if (!this.scheduled) {
      this.scheduled = true;
      // setImmediate, not nextTick: the requests read from every socket in this turn of the loop
      // join the batch before it leaves.
      setImmediate(flushLater, this);
    }
    return p;
  }

  /** Sends the collecting batches (or leaves them collecting while the breaker's trial is in flight). */
  flush(): void {
    this.scheduled = false;
    for (const [slot, b] of this.collecting) if (!this.flushOne(slot, b)) return;
  }

  /** Sends one collecting batch; false when it stays (the breaker's trial is in flight). */
  private flushOne(slot: number, b: Batch): boolean {
    if (this.redis.trialPending) {
      if (!this.waitingForTrial) {
        this.waitingForTrial = true;
        this.redis.afterTrial(this.afterTrial);
      }
      return false;
    }
    this.collecting.delete(slot);
    if (!this.redis.acquire()) {
      this.fallBack(b);
      return true;
    }
    b.t0 = performance.now();
    this.send(b);
    return true;
  }

  private send(b: Batch): void {
    const keys = b.keyArgs;
    const limits = b.limitArgs;
    const args = new Array<string | number>(3 + keys.length + limits.length);
    args[0] = this.loaded ? this.script.sha : this.script.lua;
    args[1] = keys.length;
    let j = 2;
    for (let i = 0; i < keys.length; i++) args[j++] = keys[i]!;
    args[j++] = b.n;
    for (let i = 0; i < limits.length; i++) args[j++] = limits[i]!;
    const cmd = new Command(this.loaded ? 'evalsha' : 'eval', args);
    cmd.promise.then(b.ok, b.fail);
    this.redis.client.sendCommand(cmd);
  }

  /** @internal The batch's reply: each request's decision, in order. */
  answered(b: Batch, reply: readonly number[]): void {
    this.loaded = true;
    this.redis.settle(b.t0, undefined);
    let at = 0;
    for (let i = 0; i < b.n; i++) {
      const keys = b.keys[i]!;
      try {
        b.resolves[i]!(b.owners[i]!.decided(b.ctxs[i]!, b.sets[i]!, keys, reply, at));
      } catch (err) {
        b.rejects[i]!(err);
      }
      at += 2 + 2 * keys.length;
    }
    this.recycle(b);
  }

  /** @internal The batch failed: once more by EVAL if the server lost the script, else the fallback. */
  failed(b: Batch, err: unknown): void {
    if (!b.resent && err instanceof Error && err.message.includes('NOSCRIPT')) {
      // Redis restarted (or SCRIPT FLUSH) without our connection seeing it: send the text.
      b.resent = true;
      this.loaded = false;
      this.send(b);
      return;
    }
    this.redis.settle(b.t0, err);
    this.fallBack(b);
  }

  private fallBack(b: Batch): void {
    for (let i = 0; i < b.n; i++) {
      try {
        b.resolves[i]!(b.owners[i]!.withoutRedis(b.ctxs[i]!, b.sets[i]!, b.keys[i]!));
      } catch (err) {
        b.rejects[i]!(err);
      }
    }
    this.recycle(b);
  }

  private recycle(b: Batch): void {
    b.clear();
    if (this.pool.length < POOL) this.pool.push(b);
  }
}
