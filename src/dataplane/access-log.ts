import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { CompiledRoute } from '../config/compile.js';
import { infoLinesOf, redactHeaders } from '../telemetry/logging.js';
import type { Target } from '../upstreams/target.js';
import { requestContextOf } from './context.js';
import type { DataplaneState } from './state.js';
import type { ExchangeTrace } from './trace.js';

/**
 * One JSON line per request (when enabled and sampled). The query string is left out (it often
 * carries tokens); headers only when asked for, with secrets redacted.
 *
 * The line is serialised here, field by field in a fixed order, instead of handing an object to
 * pino (which walks its keys and types every time): what is fixed per route (its name and its
 * upstream's) is serialised once per compiled route, and strings are quoted without
 * `JSON.stringify` unless they hold a character JSON escapes. The fields and their order are
 * those pino wrote before: type, requestId, method, path, status, durationMs, bytes, remote, route,
 * upstream, target, tenant, principal, client, error, attempts, headers (absent ones left out).
 * `InfoLines` puts the logger's level, time and bindings in front and writes it into the
 * logger's destination (see src/telemetry/line-writer.ts for the writer).
 */
export function logAccess(
  gw: DataplaneState,
  req: IncomingMessage,
  requestId: string,
  path: string,
  status: number,
  seconds: number,
  bytes: number,
  route: CompiledRoute | undefined,
  target: Target | undefined,
  error: string | undefined,
  /** The client socket when `req.socket` may be gone (the proxy's request body stream is destroyed once sent). */
  socket?: Socket,
  /** Tries made (retries); logged only when more than one. */
  attempts?: number,
  /** On a released route, the version that answered (its upstream group): logged as `version`. */
  version?: string,
  /** With tracing on: the exchange's trace (its ids are logged when it is sampled). */
  trace?: ExchangeTrace,
): void {
  const al = gw.runtime.accessLog;
  if (!al.enabled || (al.sample < 1 && Math.random() >= al.sample)) return;
  const out = infoLinesOf(gw.logger);
  if (!out.enabled) return;
  const remote = (socket ?? req.socket)?.remoteAddress;
  let line = `"type":"access","requestId":${str(requestId)}`;
  if (req.method !== undefined) line += `,"method":${str(req.method)}`;
  line += `,"path":${str(path)},"status":${num(status)},"durationMs":${num(Math.round(seconds * 100_000) / 100)},"bytes":${num(bytes)}`;
  if (remote !== undefined) line += `,"remote":${str(remote)}`;
  if (route !== undefined) line += routeFields(route);
  if (target !== undefined) line += `,"target":${str(target.origin)}`;
  const ctx = requestContextOf(req);
  if (ctx !== undefined) {
    const tenant =
      ctx.tenant !== undefined
        ? ctx.tenant.id
        : ctx.principal?.kind === 'apiKey'
          ? ctx.principal.tenantId
          : undefined;
    if (tenant !== undefined) line += `,"tenant":${str(tenant)}`;
    if (ctx.principal?.id !== undefined) line += `,"principal":${str(ctx.principal.id)}`;
    // Behind trusted proxies, the address from X-Forwarded-For (what IP rules and limits used).
    if (ctx.client !== remote && ctx.client !== undefined) line += `,"client":${str(ctx.client)}`;
  }
  if (error) line += `,"error":${str(error)}`;
  if (attempts !== undefined && attempts > 1) line += `,"attempts":${num(attempts)}`;
  if (version !== undefined) line += `,"version":${str(version)}`;
  if (trace?.traceId !== undefined) line += `,"trace_id":"${trace.traceId}","span_id":"${trace.spanId}"`;
  if (al.headers) line += `,"headers":${JSON.stringify(redactHeaders(req.headers, al.redact))}`;
  out.write(line);
}

/** `,"route":…,"upstream":…` of a compiled route, serialised once (a reload compiles new routes). */
const routeFieldsCache = new WeakMap<CompiledRoute, string>();
function routeFields(route: CompiledRoute): string {
  let s = routeFieldsCache.get(route);
  if (s === undefined) {
    s = `,"route":${str(route.name)},"upstream":${str(route.upstream?.name ?? 'ofrep')}`;
    routeFieldsCache.set(route, s);
  }
  return s;
}

/** What JSON.stringify escapes in a string: `"`, `\`, control characters and lone surrogates. */
const needsEscape = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A string as JSON: quoted as is unless it holds a character JSON escapes (pino's own shortcut). */
function str(s: string): string {
  return needsEscape.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** A number as JSON (`null` for NaN and infinities, as JSON.stringify and pino write them). */
function num(n: number): string {
  return Number.isFinite(n) ? `${n}` : 'null';
}
