import { type Static, Type as T } from '@sinclair/typebox';

/** `500ms`, `1s`, `1m`, `1h`, `1d`, or a number of milliseconds. */
const Window = T.Union([T.Integer({ minimum: 1 }), T.String({ pattern: '^[0-9]+(ms|s|m|h|d)$' })], {
  description:
    'The window: a number of milliseconds or `500ms`, `1s`, `1m`, `1h`, `1d`. `limit` requests are refilled per window.',
});

const LimitName = T.String({
  pattern: '^[A-Za-z0-9_.-]{1,64}$',
  description:
    'Name of the limit (letters, digits, `_.-`): shown in the `RateLimit` headers, used by plans (`limits.plans`) and tenant labels (`ratelimit.<name>`). Default: the key and window, e.g. `tenant-route-1s`.',
});

const Dimension = T.String({
  pattern: "^(tenant|apiKey|principal|route|ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$",
  description:
    '`tenant`, `apiKey` (the key id), `principal` (API key id or `issuer:subject` of a token), `route`, `ip` (the client address, after `listen.trustedProxies`), or `header:<name>`.',
});

export const RateLimitEntry = T.Object(
  {
    name: T.Optional(LimitName),
    key: T.Array(Dimension, {
      minItems: 1,
      uniqueItems: true,
      description:
        'What is counted separately: the values of these dimensions together (e.g. `[tenant, route]`: one counter per tenant and route). A request without a value (no tenant, header absent) counts under `-`. The same name and key on two routes is one counter.',
    }),
    limit: T.Integer({ minimum: 1, description: 'Requests refilled per `window`.' }),
    window: Window,
    burst: T.Optional(
      T.Integer({
        minimum: 1,
        description:
          'Requests that may arrive at once (the bucket size); default `limit`. Over any interval t at most `burst + limit × t / window` requests pass; `burst: 1` spaces requests evenly.',
      }),
    ),
    onRedisError: T.Optional(
      T.Union([T.Literal('open'), T.Literal('closed')], {
        description:
          'While Redis is unavailable: `open` (default) decides with this process’s own counters; `closed` answers 503 SLUICE-LIMIT-002.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RouteRateLimit = T.Array(RateLimitEntry, {
  minItems: 1,
  description:
    'Rate limits of this route (GCRA; see docs/rate-limits.md). Every limit is checked and a request passes only if all allow it; a refused request consumes nothing. With a top-level `redis` the counters are shared by every replica.',
});

const PlanLimit = T.Object(
  {
    limit: T.Integer({ minimum: 1 }),
    window: T.Optional(Window),
    burst: T.Optional(T.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);

export const LimitsSettings = T.Object(
  {
    plans: T.Optional(
      T.Record(T.String({ minLength: 1 }), T.Record(LimitName, PlanLimit), {
        description:
          'Per tenant plan, the values of named route limits: `plans.<plan>.<limit-name>: { limit, window?, burst? }` replaces those of every route limit with that name for tenants on that plan (the route keeps the key). A tenant label `ratelimit.<limit-name>` (`<n>` or `<n>/<window>`) overrides both.',
      }),
    ),
    localMaxKeys: T.Optional(
      T.Integer({
        minimum: 1000,
        description:
          'Most counters kept in this process (limits without Redis, and the fallback while Redis is down); default 100000. Expired counters are swept; beyond the bound the oldest are dropped.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Rate-limit defaults per plan and settings shared by routes (docs/rate-limits.md).',
  },
);

export type RateLimitConfig = Static<typeof RateLimitEntry>;
export type LimitsConfig = Static<typeof LimitsSettings>;
