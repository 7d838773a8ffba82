/**
 * Schema shapes that several parts of the config use (listener, upstreams, routes, policies): each
 * defined once here. A leaf module (it imports only TypeBox), so that config/schema.ts, which imports
 * the policies' and upstreams' schemas, and those schemas can all import it without an ESM cycle
 * (a cycle would read these constants before they exist). A field takes a shape with its own
 * description: `T.Optional({ ...Duration, description: '…; default 5s.' })`.
 */
import { type Static, Type as T } from '@sinclair/typebox';

/**
 * `250ms`, `5s`, `2m`, `1h`, or a number of milliseconds. `ms()` in ./units.ts turns one into a
 * number at compile time.
 */
export const Duration = T.Union(
  [T.Integer({ minimum: 0 }), T.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$' })],
  { description: 'A duration: a number of milliseconds or a string such as `250ms`, `5s`, `2m`, `1h`.' },
);

/** `1mb`, `512kb`, `10b` or a number of bytes. `bytes()` in ./units.ts turns one into a number. */
export const Size = T.Union([T.Integer({ minimum: 0 }), T.String({ pattern: '^[0-9]+(b|kb|mb|gb)$' })], {
  description: 'A size: a number of bytes or a string such as `512kb`, `10mb`.',
});

/** An RFC 9110 token: the pattern of header names, cookie names (RFC 6265) and CORS method names. */
export const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

export const HeaderName = T.String({ pattern: TOKEN, description: 'An HTTP header name.' });

export const CookieName = T.String({ pattern: TOKEN, description: 'A cookie name (an RFC 6265 token).' });

/** The lowest TLS version, of the public listener and of the connections to https:// targets. */
export const TlsVersion = T.Union([T.Literal('TLSv1.2'), T.Literal('TLSv1.3')], {
  description:
    'Lowest TLS version accepted: `TLSv1.2` (default) or `TLSv1.3`. Older versions are not offered.',
});

/** A PEM file named in the config (certificates, keys, CAs); read by config/tls-files.ts. */
export const PemFile = (what: string) =>
  T.String({
    minLength: 1,
    description: `${what} (PEM); a relative path is relative to the directory of the config file.`,
  });

/**
 * A concurrency limit: at most `max` at once, then a bounded FIFO queue with a timeout, then 503.
 * Of a route (`routes[].concurrency`) and of each target of an upstream (`targetConcurrency`).
 */
export function concurrency(what: string, code: string) {
  return T.Object(
    {
      max: T.Integer({ minimum: 1, description: `Most requests in flight at once ${what}.` }),
      queue: T.Optional(
        T.Integer({
          minimum: 0,
          description: `Requests over \`max\` that may wait (first in, first out) for a slot; default 0 (none: answer 503 ${code} at once).`,
        }),
      ),
      queueTimeout: T.Optional({
        ...Duration,
        description: `Longest wait in the queue; then 503 ${code}. Default 1s.`,
      }),
    },
    {
      additionalProperties: false,
      description: `Concurrency limit ${what}: over \`max\`, a request waits in a bounded queue; when the queue is full or the wait times out, 503 ${code} with \`retry-after\`.`,
    },
  );
}

export type ConcurrencyConfig = Static<ReturnType<typeof concurrency>>;
