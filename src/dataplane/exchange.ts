/**
 * One exchange: a request, or a WebSocket upgrade, from the moment it arrives to the moment it
 * ends. Every stage of the request path (stages/*.ts) receives it and records what it decided
 * (route, policies' context, target, slots taken); whichever stage ends the exchange calls
 * `finish()` once, which does the bookkeeping for all of them: slots and the in-flight count given
 * back, route metrics, the access-log line, the policies' completion phase.
 *
 * One object per request, created before the guard: it replaces the positional arguments the
 * stages used to pass each other, so it costs no more than the object they passed before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex, Readable } from 'node:stream';
import type { CompiledRoute } from '../config/compile.js';
import type { ArmCounters } from '../delivery/releases/slot.js';
import type { RequestContext } from '../policies/policy.js';
import type { UpstreamGroup } from '../upstreams/group.js';
import type { Target } from '../upstreams/target.js';
import { logAccess } from './access-log.js';
import type { Limiter } from './concurrency.js';
import { completePolicies } from './policy-chain.js';
import type { RequestHead } from './request-head.js';
import type { Params } from './router.js';
import type { DataplaneState } from './state.js';
import { type ExchangeTrace, traceOf } from './trace.js';

/** Sluice answered 502/503/504 because the upstream failed (its own 5xx carry no error note). */
function isUpstreamFailure(status: number, error: string | undefined): boolean {
  return error !== undefined && status >= 502 && status <= 504;
}

export class Exchange {
  readonly started = performance.now();
  /** The client's socket, kept because undici destroys the request stream once it has sent it. */
  readonly socket: Socket;
  /** Set by the guard. */
  requestId = '';
  /** Set by the guard: the raw head, read once. */
  head!: RequestHead;
  /** The normalised path (what is matched and, before a rewrite, forwarded). */
  path = '';
  query = '';
  /** Set by the route stage. */
  route: CompiledRoute | undefined = undefined;
  params: Params | undefined = undefined;
  /** What the route's policies established; undefined on routes without policies. */
  ctx: RequestContext | undefined = undefined;
  /** On a released route: the version chosen (0 stable, 1 candidate, -1 none) and its group. */
  arm = -1;
  version: UpstreamGroup | undefined = undefined;
  /** The counters of the step that chose the version (an answer after a step change still counts for it). */
  armCounters: ArmCounters | undefined = undefined;
  /** The target of the current (or last) try. */
  target: Target | undefined = undefined;
  /**
   * On a residency- or placement-bound route: the cell the request was placed in (a region, or a
   * combination of placement values) and the group its target came from; retries and the mirror
   * stay in that cell. Undefined on other routes.
   */
  cell: string | undefined = undefined;
  placed: UpstreamGroup | undefined = undefined;
  /** Concurrency slots held (route, target): given back once, into the limiter they came from. */
  routeSlot: Limiter | undefined = undefined;
  targetSlot: Limiter | undefined = undefined;
  /** The request body to send upstream: none, the request stream, or a buffered copy (retries). */
  body: Readable | Buffer | null = null;
  /** Tries made (retries); logged when more than one. */
  attempts = 1;
  finished = false;
  /** With tracing on: the exchange's spans (begun at dispatch, or at finish for a local answer). */
  trace: ExchangeTrace | undefined = undefined;
  /** Counted in `gw.inflight` (so a graceful drain waits for it) from the first wait on. */
  private held = false;

  constructor(
    readonly gw: DataplaneState,
    readonly req: IncomingMessage,
    /** Undefined for a WebSocket upgrade: it is answered on `upgradeSocket`. */
    readonly res: ServerResponse | undefined,
    /** The upgrade's socket (undefined for a plain request). */
    readonly upgradeSocket: Duplex | undefined = undefined,
    /** Bytes read past the upgrade request's head. */
    readonly upgradeHead: Buffer | undefined = undefined,
  ) {
    this.socket = req.socket;
  }

  /** The route; only stages after routing call this. */
  get routed(): CompiledRoute {
    return this.route!;
  }

  /** Whether the client went away (its response or socket is destroyed). */
  clientGone(): boolean {
    return this.res !== undefined
      ? this.res.destroyed || this.socket?.destroyed === true
      : this.upgradeSocket!.destroyed;
  }

  /** What emits `close` when the client leaves: the response, or the upgrade's socket. */
  get closer(): NodeJS.EventEmitter {
    return this.res ?? this.upgradeSocket!;
  }

  /** Count the exchange in flight from now until `finish`: a stage is about to wait or dispatch. */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.gw.inflight++;
  }

  /**
   * Stop counting the exchange in `gw.inflight` before it finishes: an upgraded WebSocket is
   * counted as a tunnel (`gw.upgraded`) from its 101 on, which a drain waits for and then cuts.
   */
  release(): void {
    if (!this.held) return;
    this.held = false;
    const gw = this.gw;
    gw.inflight--;
    if (gw.inflight === 0 && gw.onIdle) gw.onIdle();
  }

  /**
   * The one end of every exchange: answered, proxied, refused, or left by its client. Runs once;
   * frees what the exchange holds before anything that could throw, so a graceful drain never
   * waits on a leaked count.
   */
  finish(status: number, bytes: number, error: string | undefined): void {
    if (this.finished) return;
    this.finished = true;
    const gw = this.gw;
    if (this.routeSlot !== undefined) this.routeSlot.release();
    if (this.targetSlot !== undefined) this.targetSlot.release();
    this.routeSlot = undefined;
    this.targetSlot = undefined;
    if (this.held) gw.inflight--;
    const seconds = (performance.now() - this.started) / 1000;
    const route = this.route;
    if (route !== undefined) {
      route.metrics.requests[(status / 100) | 0]?.inc();
      route.metrics.duration.observe(seconds);
      // Allow-listed tenants only: the tenant the tenant policy verified, looked up by id.
      const ts = route.tenantSeries;
      if (ts !== undefined && this.ctx?.tenant !== undefined) {
        const cells = ts.get(this.ctx.tenant.id);
        if (cells !== undefined) {
          cells.requests[(status / 100) | 0]?.inc();
          cells.duration.observe(seconds);
        }
      }
      if (route.anomaly !== undefined) route.anomaly.record(status, seconds);
      if (route.slo !== undefined) route.slo.record(status, seconds, this.arm);
      // A released route: the answer counts for its version's analysis (a client that left does not).
      if (this.armCounters !== undefined && status !== 499 && route.release!.slot.measuring)
        this.armCounters.record(status, seconds * 1000, isUpstreamFailure(status, error));
    }
    const tracer = gw.tracer;
    if (tracer !== undefined) traceOf(this, tracer).end(this, status, error);
    logAccess(
      gw,
      this.req,
      this.requestId,
      this.path,
      status,
      seconds,
      bytes,
      route,
      this.target,
      error,
      this.socket,
      this.attempts,
      this.version?.name,
      this.trace,
    );
    if (this.ctx !== undefined && route !== undefined)
      completePolicies(route, this.ctx, status, seconds, error);
    if (this.held && gw.inflight === 0 && gw.onIdle) gw.onIdle();
  }
}
