import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { CompiledRoute } from '../config/compile.js';
import { redactHeaders } from '../telemetry/logging.js';
import type { Target } from '../upstreams/target.js';
import { requestContextOf } from './context.js';
import type { DataplaneState } from './state.js';

/**
 * One JSON line per request (when enabled and sampled). The query string is left out (it often
 * carries tokens); headers only when asked for, with secrets redacted.
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
): void {
  const al = gw.runtime.accessLog;
  if (!al.enabled || (al.sample < 1 && Math.random() >= al.sample)) return;
  const entry: Record<string, unknown> = {
    type: 'access',
    requestId,
    method: req.method,
    path,
    status,
    durationMs: Math.round(seconds * 100_000) / 100,
    bytes,
    remote: (socket ?? req.socket)?.remoteAddress,
    route: route?.name,
    upstream: route?.upstream.name,
    target: target?.origin,
  };
  const ctx = requestContextOf(req);
  if (ctx !== undefined) {
    if (ctx.tenant !== undefined) entry.tenant = ctx.tenant.id;
    else if (ctx.principal?.kind === 'apiKey') entry.tenant = ctx.principal.tenantId;
    if (ctx.principal !== undefined) entry.principal = ctx.principal.id;
    // Behind trusted proxies, the address from X-Forwarded-For (what IP rules and limits used).
    if (ctx.client !== entry.remote) entry.client = ctx.client;
  }
  if (error) entry.error = error;
  if (attempts !== undefined && attempts > 1) entry.attempts = attempts;
  if (al.headers) entry.headers = redactHeaders(req.headers, al.redact);
  gw.logger.info(entry);
}
