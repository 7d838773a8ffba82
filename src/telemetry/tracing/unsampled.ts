/**
 * The trace of a request that is not sampled: no OpenTelemetry span at all, only the traceparent
 * each try sends upstream (flag 00, so the services behind Sluice keep the decision instead of
 * sampling a trace of their own that would start below the gateway).
 *
 * Hand-written rather than the SDK's non-recording spans because at a 1% ratio this is 99% of the
 * requests: the SDK path (a sampler call, a Span and a Context object per span, the propagator's
 * string work) cost 14% more CPU per request in bench/run.mjs, this path costs an id and a string.
 */
import { randomFillSync } from 'node:crypto';
import type { Dispatcher } from 'undici';
import type { ExchangeTrace } from '../../dataplane/trace.js';
import { withoutTraceHeaders } from './trace-headers.js';

// Ids come from a pool of random bytes refilled 512 ids at a time (one syscall, not one per id).
const pool = Buffer.allocUnsafe(4096);
let at = pool.length;
const ZERO_SPAN = '0000000000000000';
const ZERO_TRACE = ZERO_SPAN + ZERO_SPAN;

function randomHex(bytes: number): string {
  if (at + bytes > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const s = pool.toString('hex', at, at + bytes);
  at += bytes;
  return s;
}

/** A new trace id (W3C: 16 random bytes, never all zero). */
export function randomTraceId(): string {
  const id = randomHex(16);
  return id === ZERO_TRACE ? randomTraceId() : id;
}

/** A new span id (8 random bytes, never all zero). */
export function randomSpanId(): string {
  const id = randomHex(8);
  return id === ZERO_SPAN ? randomSpanId() : id;
}

export class UnsampledTrace implements ExchangeTrace {
  readonly traceId = undefined;
  readonly spanId = undefined;

  /** `traceState`: a trusted caller's tracestate, passed on as it came. */
  constructor(
    private readonly trace: string,
    private readonly traceState: string | undefined,
  ) {}

  attempt(_target: unknown, options: Dispatcher.DispatchOptions): Dispatcher.DispatchOptions {
    const headers = withoutTraceHeaders(options.headers as string[]);
    headers.push('traceparent', `00-${this.trace}-${randomSpanId()}-00`);
    if (this.traceState !== undefined) headers.push('tracestate', this.traceState);
    return { ...options, headers };
  }

  endAttempt(): void {}
  responseHead(): void {}
  end(): void {}
}
