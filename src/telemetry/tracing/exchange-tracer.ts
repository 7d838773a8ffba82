/**
 * Tracing of the request path with the OpenTelemetry SDK, made by Sluice itself: one SERVER span
 * per exchange and one CLIENT span per upstream try, no instrumentation library (which would add
 * its own spans and patch node:http). Loaded only when tracing is on (the gateway imports ./provider.ts dynamically).
 *
 * No context manager is registered and nothing global is set: the parent of a CLIENT span is
 * passed explicitly, so there is no AsyncLocalStorage work per request and several gateways can
 * run in one process with their own providers. Per request: the span objects, one context for the
 * SERVER span, one traceparent string per try.
 */
import {
  type Attributes,
  type Context,
  isSpanContextValid,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  ATTR_CLIENT_ADDRESS,
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_RESEND_COUNT,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_FULL,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
} from '@opentelemetry/semantic-conventions';
import type { Dispatcher } from 'undici';
import type { CompiledRoute } from '../../config/compile.js';
import type { Exchange } from '../../dataplane/exchange.js';
import type { ExchangeTrace, ExchangeTracer } from '../../dataplane/trace.js';
import type { Target } from '../../upstreams/target.js';
import { withoutTraceHeaders } from './trace-headers.js';
import { randomTraceId, UnsampledTrace } from './unsampled.js';

/** The methods semantic conventions know; others are `_OTHER` (a span name must stay low-cardinality). */
const knownMethods = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
]);

const w3c = new W3CTraceContextPropagator();

/** The caller's trace headers, as the guard read them (only read when callers are trusted). */
interface Incoming {
  traceparent?: string;
  tracestate?: string;
}
const incomingGetter: TextMapGetter<Incoming> = {
  keys: (c) => Object.keys(c),
  get: (c, k) => (k === 'traceparent' ? c.traceparent : k === 'tracestate' ? c.tracestate : undefined),
};

/** Where traceparent/tracestate go on a try's headers (flat [name, value, ...]). */
interface Outgoing {
  headers: string[];
}
const outgoingSetter = {
  set: (c: Outgoing, k: string, v: string) => void c.headers.push(k, v),
};

export class OtelExchangeTracer implements ExchangeTracer {
  constructor(
    private readonly tracer: Tracer,
    private readonly trustIncoming: boolean,
    /** Share of new traces sampled. */
    private readonly ratio: number,
    private readonly stop: () => Promise<void>,
  ) {}

  begin(x: Exchange): ExchangeTrace {
    let parent: Context = ROOT_CONTEXT;
    let sampled = false;
    let fromCaller = false;
    if (this.trustIncoming && x.head !== undefined) {
      const inc = incomingOf(x);
      if (inc?.traceparent !== undefined) {
        parent = w3c.extract(ROOT_CONTEXT, inc, incomingGetter);
        const sc = trace.getSpanContext(parent);
        if (sc !== undefined && isSpanContextValid(sc)) {
          fromCaller = true;
          sampled = (sc.traceFlags & TraceFlags.SAMPLED) !== 0;
          // The caller decided not to sample: its trace continues upstream, with no span of ours.
          if (!sampled) return new UnsampledTrace(sc.traceId, inc.tracestate);
        }
      }
    }
    // A new trace: sampled with the ratio, decided here so an unsampled request never reaches the
    // SDK (whose root sampler is then always-on; a sampled parent keeps its decision).
    if (!fromCaller) {
      sampled = this.ratio >= 1 || (this.ratio > 0 && Math.random() < this.ratio);
      if (!sampled) return new UnsampledTrace(randomTraceId(), undefined);
    }
    const method = methodOf(x.req.method);
    const span = this.tracer.startSpan(
      method === '_OTHER' ? 'HTTP' : method,
      {
        kind: SpanKind.SERVER,
        // On the wall clock the SDK anchors its own spans to (Date.now), not performance's time
        // origin: the two drift apart over a process's life, and a CLIENT span would seem to start
        // before its request.
        startTime: Date.now() - (performance.now() - x.started),
        attributes: { [ATTR_HTTP_REQUEST_METHOD]: method },
      },
      parent,
    );
    return new OtelExchangeTrace(this.tracer, span, method);
  }

  shutdown(): Promise<void> {
    return this.stop();
  }
}

class OtelExchangeTrace implements ExchangeTrace {
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
  private readonly ctx: Context;
  private client: Span | undefined = undefined;
  private cache: string | undefined = undefined;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly method: string,
  ) {
    this.ctx = trace.setSpan(ROOT_CONTEXT, span);
    if (span.isRecording()) {
      const sc = span.spanContext();
      this.traceId = sc.traceId;
      this.spanId = sc.spanId;
    }
  }

  attempt(target: Target, options: Dispatcher.DispatchOptions, resend: number): Dispatcher.DispatchOptions {
    const where = originOf(target);
    const attributes: Attributes = {
      [ATTR_HTTP_REQUEST_METHOD]: this.method,
      // Without the query: it often carries tokens (the access log leaves it out for the same reason).
      [ATTR_URL_FULL]: where.origin + pathOnly(options.path),
      [ATTR_SERVER_ADDRESS]: where.host,
      [ATTR_SERVER_PORT]: where.port,
      'sluice.target': target.id,
    };
    if (resend > 0) attributes[ATTR_HTTP_REQUEST_RESEND_COUNT] = resend;
    const client = this.tracer.startSpan(
      this.method === '_OTHER' ? 'HTTP' : this.method,
      { kind: SpanKind.CLIENT, attributes },
      this.ctx,
    );
    this.client = client;
    // The caller's trace headers never pass: the upstream's parent is this try.
    const headers = withoutTraceHeaders(options.headers as string[]);
    w3c.inject(trace.setSpan(ROOT_CONTEXT, client), { headers }, outgoingSetter);
    return { ...options, headers };
  }

  endAttempt(status: number, error: string | undefined): void {
    const c = this.client;
    if (c === undefined) return;
    this.client = undefined;
    if (c.isRecording()) {
      if (status > 0) c.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      // A CLIENT span is an error from 400 on (semantic conventions), or when no answer came.
      if (error !== undefined || status >= 400 || status === 0) {
        c.setAttribute(ATTR_ERROR_TYPE, error ?? String(status));
        c.setStatus({ code: SpanStatusCode.ERROR });
      }
    }
    c.end();
  }

  responseHead(headers: readonly string[]): void {
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!;
      if (n.length === 7 && n.toLowerCase() === 'x-cache') this.cache = headers[i + 1];
    }
  }

  end(x: Exchange, status: number, error: string | undefined): void {
    // A try still open (the client left mid-response): it ends with the exchange.
    if (this.client !== undefined) this.endAttempt(status, error);
    const span = this.span;
    if (!span.isRecording()) {
      span.end();
      return;
    }
    const route = x.route;
    const a: Attributes = {
      [ATTR_URL_PATH]: x.path,
      [ATTR_URL_SCHEME]: x.gw.scheme,
      [ATTR_HTTP_RESPONSE_STATUS_CODE]: status,
      'sluice.request_id': x.requestId,
    };
    const v = x.req.httpVersion;
    if (v !== undefined) a[ATTR_NETWORK_PROTOCOL_VERSION] = v;
    const host = x.head?.host;
    if (host !== undefined) a[ATTR_SERVER_ADDRESS] = hostOnly(host);
    if (route !== undefined) {
      const r = route.httpRoute;
      span.updateName(`${this.method === '_OTHER' ? 'HTTP' : this.method} ${r}`);
      a[ATTR_HTTP_ROUTE] = r;
      a['sluice.route'] = route.name;
      decisions(x, route, error, a);
    }
    // A refusal's stable code (SLUICE-...), routed or not.
    if (error?.startsWith('SLUICE-')) a['sluice.refusal.code'] = error;
    if (this.cache !== undefined) a['sluice.cache.status'] = this.cache;
    if (x.attempts > 1) a['sluice.attempts'] = x.attempts;
    // A SERVER span is an error only on 5xx; a 4xx is the client's (semantic conventions).
    if (status >= 500) {
      a[ATTR_ERROR_TYPE] = error ?? String(status);
      span.setStatus({ code: SpanStatusCode.ERROR });
    } else if (error?.startsWith('SLUICE-')) a[ATTR_ERROR_TYPE] = error;
    span.setAttributes(a);
    span.end();
  }
}

/**
 * The policy decisions a person debugging a request wants, none of them a secret: the principal's
 * kind and public id (never a key or token), the tenant, the refusal code, the rate-limit header
 * Sluice answered with, the release version, the failover state.
 */
function decisions(x: Exchange, route: CompiledRoute, error: string | undefined, a: Attributes): void {
  const ctx = x.ctx;
  const refused = error?.startsWith('SLUICE-') ? error : undefined;
  if (ctx !== undefined) {
    a[ATTR_CLIENT_ADDRESS] = ctx.client;
    const p = ctx.principal;
    if (p !== undefined) {
      a['sluice.auth.result'] = 'authenticated';
      a['sluice.auth.kind'] = p.kind;
      if (p.id !== undefined) a['sluice.principal'] = p.id;
    } else if (refused?.startsWith('SLUICE-AUTH-')) a['sluice.auth.result'] = 'refused';
    const tenant = ctx.tenant?.id ?? (p?.kind === 'apiKey' ? p.tenantId : undefined);
    if (tenant !== undefined) a['sluice.tenant'] = tenant;
    const rh = ctx.responseHeaders;
    for (let i = 0; i < rh.length; i += 2) if (rh[i] === 'ratelimit') a['sluice.ratelimit'] = rh[i + 1]!;
  }
  if (refused !== undefined && /^SLUICE-(LIMIT|QUOTA|BUDGET)-/.test(refused))
    a['sluice.limit.decision'] = 'refused';
  else if (a['sluice.ratelimit'] !== undefined) a['sluice.limit.decision'] = 'allowed';
  if (route.release !== undefined && x.version !== undefined) {
    a['sluice.release.version'] = x.version.name;
    a['sluice.release.arm'] = x.arm === 1 ? 'candidate' : 'stable';
  }
  const f = route.failover;
  if (f !== undefined) {
    a['sluice.failover.active'] = f.active.name;
    a['sluice.failover'] = f.active !== f.chain[0];
  }
  const group = x.placed ?? x.version ?? (f !== undefined ? f.active : route.upstream);
  if (group !== undefined) a['sluice.upstream'] = group.name;
}

function methodOf(m: string | undefined): string {
  return m !== undefined && knownMethods.has(m) ? m : '_OTHER';
}

function incomingOf(x: Exchange): Incoming | undefined {
  const { lnames, fwd } = x.head;
  let inc: Incoming | undefined;
  for (let j = 0; j < lnames.length; j++) {
    const l = lnames[j]!;
    if (l !== 'traceparent' && l !== 'tracestate') continue;
    if (inc === undefined) inc = {};
    const v = fwd[2 * j + 1]!;
    // Two traceparent headers are no trace context at all (W3C Trace Context §3.2: the request
    // starts a new trace); several tracestate headers are one list.
    if (l === 'traceparent') {
      if (inc.traceparent !== undefined) return undefined;
      inc.traceparent = v;
    } else inc.tracestate = inc.tracestate === undefined ? v : `${inc.tracestate},${v}`;
  }
  return inc;
}

interface Origin {
  origin: string;
  host: string;
  port: number;
}
const originCache = new WeakMap<Target, Origin>();
function originOf(t: Target): Origin {
  let o = originCache.get(t);
  if (o === undefined) {
    const u = new URL(t.origin);
    o = {
      origin: u.origin,
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port: u.port !== '' ? Number(u.port) : u.protocol === 'https:' ? 443 : 80,
    };
    originCache.set(t, o);
  }
  return o;
}

function pathOnly(path: string): string {
  const q = path.indexOf('?');
  return q < 0 ? path : path.slice(0, q);
}

function hostOnly(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const c = host.lastIndexOf(':');
  return c < 0 ? host : host.slice(0, c);
}
