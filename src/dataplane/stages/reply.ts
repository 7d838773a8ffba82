/**
 * Local replies: the answers Sluice gives itself instead of the upstream's. A refusal (problem+json
 * with a stable code), a policy's own reply (a cache hit, a CORS preflight) and a route's static
 * fallback. Plain requests are answered on their response; an upgrade, which has none, on its
 * socket. Each ends the exchange (`finish`), so the bookkeeping is the same on every way out.
 */
import type { IncomingMessage } from 'node:http';
import type { Fallback } from '../../config/compile.js';
import { type ErrorDef, Errors } from '../../errors/codes.js';
import { sendProblem, writeProblemToSocket } from '../../errors/problem.js';
import type { Denial, Reply } from '../../policies/policy.js';
import { withPolicyHeaders } from '../context.js';
import type { Exchange } from '../exchange.js';
import { traceOf } from '../trace.js';

/**
 * Set on a socket once Sluice has answered `connection: close` to a refused request. node:http
 * still parses and emits requests pipelined behind it (for an ambiguous request, exactly the
 * smuggled one): they must never be routed. The socket closes when the refusal is flushed.
 */
const kRefusedClosing = Symbol('sluice.refusedClosing');
type MarkableSocket = { [kRefusedClosing]?: boolean } | null;

export function closingAfterRefusal(req: IncomingMessage): boolean {
  return (req.socket as MarkableSocket)?.[kRefusedClosing] === true;
}

export const closeHeaders: Readonly<Record<string, string>> = { connection: 'close' };
export const retryAfterOne: Readonly<Record<string, string>> = { 'retry-after': '1' };

/**
 * Refuse the exchange with `def` (and the headers the request's policies add to every answer).
 * Answered means recorded: when the request emitted an audited event (an auth failure, a limit
 * breach, a residency refusal) the refusal is written once the audit outbox has it on disk; if it
 * cannot get there, the answer is 503 SLUICE-AUDIT-001 rather than a refusal with no record.
 * Refusals of requests that emitted nothing pay one lookup; successful requests never come here.
 */
export function refuse(
  x: Exchange,
  def: ErrorDef,
  detail: string | undefined,
  headers?: Readonly<Record<string, string>>,
): void {
  const ack = x.gw.audit?.pendingAck(x.requestId);
  if (ack === undefined) writeRefusal(x, def, detail, headers);
  else {
    x.hold(); // in flight for a drain while the record is written
    ack.then(
      () => (x.clientGone() ? x.finish(499, 0, 'client_closed') : writeRefusal(x, def, detail, headers)),
      () =>
        x.clientGone()
          ? x.finish(499, 0, 'client_closed')
          : writeRefusal(x, Errors.auditUnrecorded, 'the refusal could not be recorded in the audit log'),
    );
  }
}

function writeRefusal(
  x: Exchange,
  def: ErrorDef,
  detail: string | undefined,
  headers?: Readonly<Record<string, string>>,
): void {
  const gw = x.gw;
  gw.metrics.refusals.labels(def.code).inc();
  const extra = withPolicyHeaders(x.ctx, gw.draining ? { ...headers, connection: 'close' } : headers);
  if (x.res !== undefined) {
    if (extra?.connection === 'close' && x.socket) (x.socket as MarkableSocket)![kRefusedClosing] = true;
    sendProblem(x.res, def, x.requestId, detail, extra);
  } else writeProblemToSocket(x.upgradeSocket!, def, detail, x.requestId, extra);
  x.finish(def.status, 0, def.code);
}

/** A policy's answer instead of the upstream's: a refusal, or a reply of its own. */
export function answer(x: Exchange, v: Denial | Reply): void {
  if ('def' in v) {
    refuse(x, v.def, v.detail, v.headers);
    return;
  }
  const headers = v.headers.concat('x-request-id', x.requestId, ...x.ctx!.responseHeaders);
  const tracer = x.gw.tracer;
  if (tracer !== undefined) traceOf(x, tracer).responseHead(headers);
  // RFC 9110 §8.6: a 204 (a CORS preflight's answer) has no Content-Length; node:http sends it as given.
  // Nor does a 304 from the cache: its Content-Length could only be the full representation's.
  if (v.status !== 204 && v.status !== 304) headers.push('content-length', String(v.body.length));
  sendStatic(x, v.status, headers, v.body, v.note);
}

/** The route's static `fallback` answer (its upstream has no target to offer). */
export function sendFallback(x: Exchange, fb: Extract<Fallback, { kind: 'static' }>): void {
  const headers = fb.headers.concat('content-length', String(fb.body.length), 'x-request-id', x.requestId);
  if (x.ctx !== undefined) headers.push(...x.ctx.responseHeaders);
  sendStatic(x, fb.status, headers, fb.body, 'fallback');
}

/** Answer with a complete response Sluice holds; `note` goes in the access log's error field. */
function sendStatic(x: Exchange, status: number, headers: string[], body: Buffer, note: string): void {
  const res = x.res;
  const head = x.req.method === 'HEAD';
  if (res === undefined) {
    // An upgrade answered without the upstream: a plain HTTP/1.1 response, then the socket closes.
    let text = `HTTP/1.1 ${status} \r\n`;
    for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    x.upgradeSocket!.end(Buffer.concat([Buffer.from(`${text}connection: close\r\n\r\n`, 'latin1'), body]));
  } else {
    if (x.gw.draining) headers.push('connection', 'close');
    res.writeHead(status, headers);
    res.end(head ? undefined : body);
  }
  x.finish(status, body.length, note);
}
