/**
 * Response trailers (gRPC's `grpc-status`, checksums after a streamed body) passed from the
 * upstream to the client: HTTP/2 clients get them in a trailing HEADERS frame, HTTP/1.1 clients in
 * the last chunk of a chunked response (Node drops them from a sized one, as it must).
 */
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';

/** Trailer fields that may not be forwarded (framing, routing and connection fields). */
const forbiddenTrailers: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'content-length',
  'content-type',
  'host',
  'trailer',
  'te',
]);

/**
 * Trailers from undici (raw `[name, value, ...]` from HTTP/1.1, an object from HTTP/2) as the
 * object `addTrailers` takes, without fields that cannot be trailers. Undefined when none.
 */
export function trailerObject(
  trailers: readonly (Buffer | string)[] | IncomingHttpHeaders,
): Record<string, string | string[]> | undefined {
  let out: Record<string, string | string[]> | undefined;
  const add = (name: string, value: string | string[]) => {
    const l = name.toLowerCase();
    if (l.charCodeAt(0) === 58 || forbiddenTrailers.has(l)) return;
    out ??= {};
    const prev = out[l];
    out[l] = prev === undefined ? value : ([] as string[]).concat(prev, value);
  };
  if (Array.isArray(trailers)) {
    for (let i = 0; i < trailers.length; i += 2)
      add(trailers[i]!.toString('latin1'), trailers[i + 1]!.toString('latin1'));
  } else {
    const obj = trailers as IncomingHttpHeaders;
    for (const k of Object.keys(obj)) {
      const v = obj[k];
      if (v !== undefined) add(k, v);
    }
  }
  return out;
}

/**
 * Add the upstream's trailers to the client response, before `end`. Fields Node refuses (invalid
 * bytes) leave the trailers out rather than fail an exchange whose body has already been sent.
 */
export function forwardTrailers(
  res: ServerResponse,
  trailers: readonly (Buffer | string)[] | IncomingHttpHeaders,
): void {
  const t = trailerObject(trailers);
  if (t === undefined) return;
  try {
    res.addTrailers(t);
  } catch {
    // Left out: see above.
  }
}
