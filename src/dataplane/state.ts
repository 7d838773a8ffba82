import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Runtime } from '../config/compile.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { ExchangeTracer } from './trace.js';

/** What the data plane reads from the running gateway. The runtime reference is swapped on reload. */
export interface DataplaneState {
  runtime: Runtime;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly scheme: 'http' | 'https';
  /** Set when draining: responses carry `Connection: close`. */
  draining: boolean;
  inflight: number;
  /** Open WebSocket tunnels (client sockets): a drain waits for them, then closes them. */
  readonly upgraded: Set<Duplex>;
  /** Called when `inflight` reaches zero while draining. */
  onIdle: (() => void) | undefined;
  /** With tracing on (docs/tracing.md); undefined otherwise: the request path's only check. */
  readonly tracer?: ExchangeTracer | undefined;
  /** With `audit.enabled`: a refusal is written once the events its request emitted are on disk. */
  readonly audit?: { pendingAck(requestId: string): Promise<unknown> | undefined } | undefined;
}
