/**
 * The guard: what every request must pass before anything reads it. One pass over the raw head
 * (request-head.ts) refuses ambiguous framing and unusable headers, the request target is split
 * and its path normalised once, so the path that is matched is the path that is forwarded, and the
 * request id is taken (when acceptable) or made.
 */
import { randomUUID } from 'node:crypto';
import { Errors } from '../../errors/codes.js';
import type { Exchange } from '../exchange.js';
import { acceptableRequestId } from '../headers.js';
import { normalizePath, splitTarget } from '../path.js';
import { readRequestHead, validHost } from '../request-head.js';
import { closeHeaders, refuse } from './reply.js';

/** True when the request may go on; otherwise it has been refused. */
export function guard(x: Exchange): boolean {
  const req = x.req;
  // The config's header table: its API-key header is single, its identity headers never pass.
  const head = readRequestHead(req, x.gw.runtime.headActions);
  x.head = head;
  x.requestId = acceptableRequestId(head.requestId) ? head.requestId : randomUUID();
  // After a framing or header refusal the rest of the bytes on this connection cannot be trusted
  // to start a new request (that is what smuggling exploits): answer, then close.
  if (head.framingError !== undefined) return no(x, Errors.ambiguousFraming, head.framingError, closeHeaders);
  if (head.transferEncoding !== undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 0)
    // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the framing is faulty.
    return no(x, Errors.ambiguousFraming, 'Transfer-Encoding in an HTTP/1.0 request', closeHeaders);
  // SLUICE-REQ-003, or SLUICE-REQ-009 for a repeated credential header (head.headerErrorDef).
  if (head.headerError !== undefined) return no(x, head.headerErrorDef, head.headerError, closeHeaders);
  const target = splitTarget(req.url ?? '');
  if (target === undefined) return no(x, Errors.invalidPath, 'the request target is not a path');
  if (target.authority !== undefined) {
    // RFC 9112 §3.2.2: with an absolute-form target the authority replaces Host, for routing and
    // for forwarding alike, so the route matched and the host the upstream sees are the same.
    if (!validHost(target.authority))
      return no(x, Errors.invalidPath, 'invalid authority in the request target');
    head.host = target.authority;
  } else if (head.host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) {
    // Checked here rather than by node:http (`requireHostHeader`), which answers a bare 400.
    return no(x, Errors.invalidHeader, 'an HTTP/1.1 request needs a Host header', closeHeaders);
  }
  const path = normalizePath(target.path, x.gw.runtime.pathOptions);
  if (typeof path !== 'string') return no(x, Errors.invalidPath, path.error);
  x.path = path;
  x.query = target.query;
  return true;
}

function no(
  x: Exchange,
  def: (typeof Errors)[keyof typeof Errors],
  detail: string,
  headers?: Readonly<Record<string, string>>,
): false {
  refuse(x, def, detail, headers);
  return false;
}
