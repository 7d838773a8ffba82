/**
 * A release's mirror: shadow traffic to the candidate. While the release runs or is paused, a
 * request answered by the STABLE version whose method is mirrored is copied to a target of the
 * candidate group, with probability `percent` and at most `maxPerSecond` (a token bucket per
 * release). The copy is the request the stable target received (path, query, the headers Sluice
 * forwarded, so never a credential the route dropped, and a buffered body), plus
 * `x-sluice-mirror: 1`. It is fired off the request path (setImmediate after the stable answer's
 * head), never awaited, bounded by the candidate group's timeouts, and its answer is read and
 * dropped: the client never sees it and never waits for it. Mirrored requests are not
 * access-logged and not in the route's metrics.
 *
 * Compared, once both answers are in: the status (`compare.status`, default true) and, with
 * `compare.body`, the SHA-256 of both bodies. The stable body is hashed as it streams to the
 * client (a body tap, only with `compare.body`); a body over MAX_COMPARED_BYTES on either side is
 * not compared (status still is) and counted in `bodiesNotCompared`.
 *
 * Counted on the candidate's ArmCounters of the current step: `mirrored` (every copy that ended,
 * answered or failed), `mirrorDiffs` (a differing status or digest, a failed copy included), and
 * the copy's status and latency through `record()`. Mirrored requests therefore count in the
 * candidate's `requests`: they are what the candidate served, and in a blue/green preview (weight
 * 0) they are most of what it is judged on.
 */
import { createHash, type Hash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Exchange } from '../../dataplane/exchange.js';
import { classifyUpstreamError, TotalTimeoutError } from '../../dataplane/upstream-errors.js';
import type { BodyTap } from '../../policies/policy.js';
import type { UpstreamGroup } from '../../upstreams/group.js';
import type { Target } from '../../upstreams/target.js';
import type { ReleaseConfig } from './schema.js';
import { CANDIDATE, type ReleaseSlot, STABLE } from './slot.js';

export const DEFAULT_MIRROR_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS'];
export const DEFAULT_MIRROR_PER_SECOND = 50;
/** Bodies longer than this (on either side) are not digested: counted as not compared. */
export const MAX_COMPARED_BYTES = 1 << 20;
/** The header that tells the candidate a request is a copy (its answer is discarded). */
export const MIRROR_HEADER = 'x-sluice-mirror';

type MirrorConfig = NonNullable<ReleaseConfig['mirror']>;

/**
 * A token bucket: `rate` tokens per second, at most `burst` banked. Two numbers and no allocation
 * per call, so a request over the bound costs a subtraction and a comparison.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes a token at `now` (ms, monotonic): false when none is left. */
  take(now: number): boolean {
    const elapsed = now - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = now;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** The bucket's size: a tenth of a second's worth, at least one request. */
export function burstOf(perSecond: number): number {
  return Math.max(1, Math.ceil(perSecond / 10));
}

/** The mirrored methods, upper-cased (HTTP methods are case-sensitive; config is forgiven). */
export function mirrorMethods(methods: readonly string[] | undefined): ReadonlySet<string> {
  return new Set((methods ?? DEFAULT_MIRROR_METHODS).map((m) => m.toUpperCase()));
}

/** What a mirrored copy ended with: null digest when not compared (too long, cut, not asked). */
interface Side {
  status: number;
  digest: string | null;
}

/** Whether two answers differ, by the comparison asked for. */
export function differs(
  stable: Side,
  mirror: Side,
  compare: { status: boolean; body: boolean },
): { diff: boolean; bodyCompared: boolean } {
  const bodyCompared = compare.body && stable.digest !== null && mirror.digest !== null;
  const diff =
    (compare.status && stable.status !== mirror.status) || (bodyCompared && stable.digest !== mirror.digest);
  return { diff, bodyCompared };
}

export class ReleaseMirror {
  readonly methods: ReadonlySet<string>;
  readonly percent: number;
  readonly compare: { readonly status: boolean; readonly body: boolean };
  private readonly bucket: TokenBucket;
  /** This process's own figures (not in the store): copies fired, refused by the rate, bodies not compared. */
  readonly stats = { fired: 0, overRate: 0, bodiesNotCompared: 0 };

  constructor(
    cfg: MirrorConfig,
    readonly slot: ReleaseSlot,
    readonly candidate: UpstreamGroup,
    now: number = performance.now(),
  ) {
    this.methods = mirrorMethods(cfg.methods);
    this.percent = cfg.percent ?? 100;
    const rate = cfg.maxPerSecond ?? DEFAULT_MIRROR_PER_SECOND;
    this.bucket = new TokenBucket(rate, burstOf(rate), now);
    this.compare = { status: cfg.compare?.status ?? true, body: cfg.compare?.body ?? false };
  }

  /**
   * The decision, cheapest test first; a token is taken only when everything else says yes.
   * `replayable`: the request has no body or a buffered one (a streamed body was consumed).
   */
  admits(arm: number, method: string, replayable: boolean, random: number, now: number): boolean {
    if (arm !== STABLE || !this.slot.measuring || !this.methods.has(method) || !replayable) return false;
    if (this.percent < 100 && random * 100 >= this.percent) return false;
    if (this.bucket.take(now)) return true;
    this.stats.overRate++;
    return false;
  }

  /**
   * Called by the proxy once the stable answer's head is in (`status`), with the dispatch options
   * of the stable try. Returns a tap for the stable body when bodies are compared.
   */
  begin(x: Exchange, status: number, sent: Dispatcher.DispatchOptions): BodyTap | undefined {
    const body = x.body;
    const replayable = body === null || Buffer.isBuffer(body);
    const random = this.percent < 100 ? Math.random() : 0;
    if (!this.admits(x.arm, x.req.method ?? '', replayable, random, performance.now())) return undefined;
    // A residency- or placement-bound route's copy goes to the candidate's targets in the cell the
    // request was placed in (region, shard...), or nowhere: a copy never crosses cells.
    const target = x.cell === undefined ? this.candidate.pick(x.req) : this.candidate.pickIn(x.cell, x.req);
    if (target === undefined) return undefined;
    const limiter = target.limiter;
    if (limiter !== undefined && !limiter.tryAcquire()) return undefined;
    const run = new MirrorRun(this, target, status, {
      path: sent.path,
      method: sent.method,
      headers: mirrorHeaders(
        sent.headers as string[],
        x.routed.hostMode === 1 ? target.hostHeader : undefined,
      ),
      body: body as Buffer | null,
    });
    this.stats.fired++;
    setImmediate(run.fire);
    return this.compare.body ? run : undefined;
  }
}

/** A copy of the forwarded headers, with the candidate target's Host where the route sends the target's. */
function mirrorHeaders(sent: readonly string[], host: string | undefined): string[] {
  const out = sent.slice();
  if (host !== undefined)
    for (let i = out.length - 2; i >= 0; i -= 2)
      if (out[i] === 'host') {
        out[i + 1] = host;
        break;
      }
  out.push(MIRROR_HEADER, '1');
  return out;
}

/** One mirrored copy: the stable side (a body tap) and the candidate side, joined when both ended. */
class MirrorRun implements BodyTap {
  private hash: Hash | undefined;
  private stableBytes = 0;
  private stable: Side | undefined;
  private mirror: Side | undefined;
  private mirrorMs = 0;
  private mirrorFailed = false;

  constructor(
    private readonly m: ReleaseMirror,
    private readonly target: Target,
    private readonly stableStatus: number,
    private readonly request: {
      path: string;
      method: Dispatcher.HttpMethod;
      headers: string[];
      body: Buffer | null;
    },
  ) {
    if (m.compare.body) this.hash = createHash('sha256');
    // Status only: the stable side is complete with its head.
    else this.stable = { status: stableStatus, digest: null };
  }

  data(chunk: Buffer): void {
    const h = this.hash;
    if (h === undefined) return;
    this.stableBytes += chunk.length;
    if (this.stableBytes > MAX_COMPARED_BYTES) this.hash = undefined;
    else h.update(chunk);
  }

  end(): void {
    const h = this.hash;
    this.hash = undefined;
    this.stable = { status: this.stableStatus, digest: h === undefined ? null : h.digest('hex') };
    this.join();
  }

  abort(): void {
    this.hash = undefined;
    this.stable = { status: this.stableStatus, digest: null };
    this.join();
  }

  readonly fire = (): void => {
    void this.send();
  };

  private async send(): Promise<void> {
    const t = this.target;
    const group = this.m.candidate;
    const timeouts = group.timeouts;
    const started = performance.now();
    t.state.inflight++;
    let timer: NodeJS.Timeout | undefined;
    let status = 0;
    let error: string | undefined;
    let digest: string | null = null;
    try {
      let signal: AbortSignal | undefined;
      if (timeouts.total > 0) {
        const ac = new AbortController();
        timer = setTimeout(() => ac.abort(new TotalTimeoutError('total timeout')), timeouts.total);
        timer.unref();
        signal = ac.signal;
      }
      const res = await t.dispatcher.request({
        path: this.request.path,
        method: this.request.method,
        headers: this.request.headers,
        body: this.request.body,
        headersTimeout: timeouts.firstByte,
        bodyTimeout: timeouts.idle,
        signal,
      });
      status = res.statusCode;
      digest = await drain(res.body, this.m.compare.body);
    } catch (err) {
      const c = classifyUpstreamError(err);
      status = c.def.status;
      error = c.kind;
      this.mirrorFailed = true;
    } finally {
      clearTimeout(timer);
    }
    this.mirrorMs = performance.now() - started;
    t.state.inflight--;
    t.limiter?.release();
    if (t.health !== undefined) t.health.observe(status, error);
    this.mirror = { status, digest };
    this.join();
  }

  /** Both sides ended: count on the candidate arm of the step the release is at now. */
  private join(): void {
    const stable = this.stable;
    const mirror = this.mirror;
    if (stable === undefined || mirror === undefined) return;
    this.stable = undefined; // joined once
    const m = this.m;
    const { diff, bodyCompared } = differs(stable, mirror, m.compare);
    if (m.compare.body && !bodyCompared) m.stats.bodiesNotCompared++;
    if (!m.slot.measuring) return;
    const c = m.slot.counters[CANDIDATE];
    c.record(mirror.status, this.mirrorMs, this.mirrorFailed && mirror.status >= 502 && mirror.status <= 504);
    c.mirrored++;
    if (diff || this.mirrorFailed) c.mirrorDiffs++;
  }
}

/** Reads a mirrored answer's body to its end and drops it; its digest when asked and not too long. */
async function drain(body: Readable, digest: boolean): Promise<string | null> {
  const h = digest ? createHash('sha256') : undefined;
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    // Past the bound: stop reading (the connection is closed rather than drained at length).
    if (bytes > MAX_COMPARED_BYTES) return null;
    h?.update(chunk);
  }
  return h === undefined ? null : h.digest('hex');
}
