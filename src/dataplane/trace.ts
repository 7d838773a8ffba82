/**
 * What the request path knows of tracing: two small interfaces, types only. The implementation
 * (src/telemetry/tracing/exchange-tracer.ts) is loaded by the gateway only when tracing is on, so
 * with tracing off the serving process loads no OpenTelemetry code, makes no span objects and does
 * no context work: every hook is one comparison with undefined (`gw.tracer`, `x.trace`).
 */
import type { Dispatcher } from 'undici';
import type { Target } from '../upstreams/target.js';
import type { Exchange } from './exchange.js';

/** One per gateway (with tracing on): starts the trace of an exchange. */
export interface ExchangeTracer {
  /** The SERVER span of `x`, started at the exchange's arrival (parent: a trusted caller's traceparent). */
  begin(x: Exchange): ExchangeTrace;
  /** Export what is buffered and stop. */
  shutdown(): Promise<void>;
}

/** The trace of one exchange: its SERVER span and the CLIENT span of the current upstream try. */
export interface ExchangeTrace {
  /** Set when the SERVER span is sampled (recorded): what the access log line carries. */
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
  /**
   * Start the CLIENT span of a try (`resend` 0 for the first) and return its dispatch options:
   * the caller's trace headers replaced by this try's traceparent (and tracestate).
   */
  attempt(target: Target, options: Dispatcher.DispatchOptions, resend: number): Dispatcher.DispatchOptions;
  /** End the current try's CLIENT span. */
  endAttempt(status: number, error: string | undefined): void;
  /** The response head sent to the client (flat [name, value, ...]): the cache status is read from it. */
  responseHead(headers: readonly string[]): void;
  /** End the SERVER span with the exchange's outcome and the policy decisions recorded on it. */
  end(x: Exchange, status: number, error: string | undefined): void;
}

/** The exchange's trace, begun on first need (a dispatch, or the finish of a refused request). */
export function traceOf(x: Exchange, tracer: ExchangeTracer): ExchangeTrace {
  if (x.trace === undefined) x.trace = tracer.begin(x);
  return x.trace;
}
