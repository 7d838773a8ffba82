/**
 * The request body: refused at once when its declared size is over the route's limit (413), a
 * chunked body is counted as it streams (413 past the limit), and on a route that retries, a
 * small enough body (`retry.bufferBody`) is read whole first so another try can send it again.
 * Anything else streams through untouched.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { Errors } from '../../errors/codes.js';
import type { Exchange } from '../exchange.js';
import { BodyTooLargeError } from '../upstream-errors.js';
import { closeHeaders, refuse } from './reply.js';

type Next = (x: Exchange) => void;

/** Set `x.body`, then `next` (after reading it whole when it is buffered for retries). */
export function requestBody(x: Exchange, next: Next): void {
  const { req, head } = x;
  const route = x.routed;
  if (head.contentLength !== undefined) {
    const n = Number(head.contentLength);
    if (n > route.maxBodyBytes) {
      refuse(x, Errors.bodyTooLarge, `the body exceeds ${route.maxBodyBytes} bytes`, closeHeaders);
      return;
    }
    if (n > 0) {
      const rp = route.retry;
      if (rp !== undefined && n <= rp.bufferBody && rp.methods.has(req.method!)) {
        bufferBody(x, next);
        return;
      }
      x.body = req;
    }
  } else if (head.transferEncoding !== undefined) {
    // undici streams async iterables as chunked bodies; its types only name Readable.
    x.body = route.maxBodyBytes > 0 ? (limitBody(req, route.maxBodyBytes) as unknown as Readable) : req;
  }
  next(x);
}

/** Stream a chunked body through while counting; past the limit the upload is aborted with 413. */
async function* limitBody(req: IncomingMessage, max: number): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > max) throw new BodyTooLargeError(`the body exceeds ${max} bytes`);
    yield chunk;
  }
}

/**
 * Read a (sized, small) request body whole, then `next`. A client that leaves meanwhile is logged
 * 499; one that stalls longer than `listen.timeouts.requestBody` is answered 408.
 */
function bufferBody(x: Exchange, next: Next): void {
  const { req } = x;
  const res = x.res!;
  const chunks: Buffer[] = [];
  const idle = x.gw.runtime.requestBodyIdle;
  x.hold();
  const cleanup = () => {
    req.removeListener('data', onData);
    req.removeListener('end', onEnd);
    req.removeListener('error', onGone);
    res.removeListener('close', onGone);
    if (idle > 0) {
      req.removeListener('timeout', onStall);
      if (req.socket && !req.socket.destroyed) req.socket.setTimeout(0);
    }
  };
  const onData = (c: Buffer) => chunks.push(c);
  const onEnd = () => {
    cleanup();
    x.body = Buffer.concat(chunks);
    next(x);
  };
  const onGone = () => {
    cleanup();
    x.finish(499, 0, 'client_closed');
  };
  const onStall = () => {
    cleanup();
    refuse(x, Errors.requestBodyTimeout, 'the client stopped sending the request body', closeHeaders);
  };
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('error', onGone);
  res.once('close', onGone);
  if (idle > 0) req.setTimeout(idle, onStall);
}
