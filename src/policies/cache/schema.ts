import { type Static, Type as T } from '@sinclair/typebox';
import { Duration, HeaderName, Size } from '../../config/shared-schema.js';

export const RouteCache = T.Object(
  {
    enabled: T.Optional(T.Boolean({ description: 'Turn the cache on or off for this route; default true.' })),
    methods: T.Optional(
      T.Array(T.Union([T.Literal('GET'), T.Literal('HEAD')]), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Methods answered from the cache; default [GET, HEAD]. HEAD is answered from the GET entry; only GET fills entries.',
      }),
    ),
    ttl: T.Optional({
      ...Duration,
      description:
        'Freshness of a response that carries none (no s-maxage, max-age or Expires); default 60s. 0: only responses with explicit freshness are stored.',
    }),
    maxTtl: T.Optional({
      ...Duration,
      description: 'Upper bound on any freshness lifetime, the upstream’s included; default none.',
    }),
    maxObjectSize: T.Optional({
      ...Size,
      description: 'Largest response body stored; larger responses are passed through uncached. Default 1mb.',
    }),
    statuses: T.Optional(
      T.Array(T.Integer({ minimum: 200, maximum: 599 }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Status codes that may be stored; default [200, 203, 204, 300, 301, 308, 404, 410]. 206 and 304 never are.',
      }),
    ),
    key: T.Optional(
      T.Object(
        {
          query: T.Optional(
            T.Array(T.String({ minLength: 1 }), {
              uniqueItems: true,
              description:
                'Only these query parameters are part of the key (in this order; others are ignored). Default: the whole query string as sent. [] ignores the query.',
            }),
          ),
          headers: T.Optional(
            T.Array(HeaderName, {
              uniqueItems: true,
              description:
                'Request headers whose values are added to the key (besides those the response names in Vary).',
            }),
          ),
        },
        {
          additionalProperties: false,
          description: 'What distinguishes entries besides tenant, host, path and query.',
        },
      ),
    ),
    shared: T.Optional(
      T.Boolean({
        description:
          'Store responses to authorised requests (an Authorization header, or a caller the route’s auth identified) and share them between the callers of one tenant. Default false: such responses are stored only when they say public, s-maxage or must-revalidate.',
      }),
    ),
    setCookie: T.Optional(
      T.Union([T.Literal('bypass'), T.Literal('strip')], {
        description:
          'A response with Set-Cookie: `bypass` (default) is not stored; `strip` stores it without its Set-Cookie headers (the client that caused the fill still gets them).',
      }),
    ),
    requestCacheControl: T.Optional(
      T.Boolean({
        description:
          'Honour the client’s Cache-Control (no-store, no-cache, max-age) and Pragma: no-cache; default true. false: clients cannot bypass or refresh the cache.',
      }),
    ),
    coalesce: T.Optional(
      T.Object(
        {
          enabled: T.Optional(T.Boolean({ description: 'Default true.' })),
          wait: T.Optional({
            ...Duration,
            description:
              'Longest wait for another request filling the same entry before going upstream anyway; default 5s.',
          }),
        },
        {
          additionalProperties: false,
          description:
            'Request coalescing: concurrent misses on one key make one upstream request; the others wait for its response.',
        },
      ),
    ),
    invalidate: T.Optional(
      T.Boolean({
        description:
          'A successful unsafe request (POST, PUT, PATCH, DELETE) on this route removes the entry of its URL (RFC 9111 §4.4); default true.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Response caching on this route (RFC 9111, as a shared cache). Entries are keyed by route, tenant, host, path and query, and by the request headers the response names in Vary. See docs/cache.md.',
  },
);

export const CacheSettings = T.Object(
  {
    store: T.Optional(
      T.Union([T.Literal('memory'), T.Literal('redis')], {
        description:
          '`memory` (default): entries in this process, bounded by maxBytes (least recently used evicted). `redis`: entries in the top-level `redis`, shared by every replica.',
      }),
    ),
    maxBytes: T.Optional({
      ...Size,
      description: 'Memory store: bound on stored bytes (bodies, headers and keys); default 64mb.',
    }),
  },
  { additionalProperties: false, description: 'Where cached responses are kept. See docs/cache.md.' },
);

export type RouteCacheConfig = Static<typeof RouteCache>;
export type CacheSettingsConfig = Static<typeof CacheSettings>;
