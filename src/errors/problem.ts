import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type ErrorDef, typeUri } from './codes.js';

/** An RFC 9457 problem details object, with our stable `code` extension member. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

export function problem(def: ErrorDef, detail?: string, extra?: Record<string, unknown>): Problem {
  const p: Problem = { type: typeUri(def), title: def.title, status: def.status, code: def.code };
  if (detail !== undefined) p.detail = detail;
  if (extra) Object.assign(p, extra);
  return p;
}

export const problemContentType = 'application/problem+json';

/** Answer a request with a problem. Refusals are off the fast path, so plain JSON.stringify is fine. */
export function sendProblem(
  res: ServerResponse,
  def: ErrorDef,
  requestId: string | undefined,
  detail?: string,
  extraHeaders?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(
    problem(def, detail, requestId ? { instance: `urn:sluice:request:${requestId}` } : undefined),
  );
  const headers: Record<string, string | number> = {
    'content-type': problemContentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extraHeaders,
  };
  if (requestId) headers['x-request-id'] = requestId;
  res.writeHead(def.status, headers);
  res.end(body);
}

/** Write a problem straight onto a raw socket (parser errors and refused upgrades have no ServerResponse). */
export function writeProblemToSocket(
  socket: Duplex,
  def: ErrorDef,
  detail?: string,
  requestId?: string,
  extraHeaders?: Readonly<Record<string, string>>,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(
    problem(def, detail, requestId ? { instance: `urn:sluice:request:${requestId}` } : undefined),
  );
  const head =
    `HTTP/1.1 ${def.status} ${def.title}\r\n` +
    `content-type: ${problemContentType}\r\n` +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'cache-control: no-store\r\n' +
    (requestId ? `x-request-id: ${requestId}\r\n` : '') +
    extraHeaderLines(extraHeaders) +
    'connection: close\r\n\r\n';
  socket.end(head + body);
}

/** Header lines for a raw answer; `connection` is always `close` there, so it is skipped. */
function extraHeaderLines(headers: Readonly<Record<string, string>> | undefined): string {
  if (headers === undefined) return '';
  let out = '';
  for (const name in headers) if (name !== 'connection') out += `${name}: ${headers[name]}\r\n`;
  return out;
}
