import { type Static, Type as T } from '@sinclair/typebox';
import { Duration, TOKEN } from '../../config/shared-schema.js';

export const QUOTA_NAME = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$';
const HeaderName = T.String({ pattern: TOKEN, maxLength: 100 });

export const OnRedisError = T.Union([T.Literal('open'), T.Literal('closed')], {
  description:
    'While Redis fails: `open` (default) decides in this process from the last values it knew and keeps counting (persisted as usual); `closed` refuses with 503 SLUICE-QUOTA-002.',
});

export const QuotaLimits = T.Object(
  {
    daily: T.Optional(T.Integer({ minimum: 0, description: 'Most a tenant may use per UTC day.' })),
    monthly: T.Optional(
      T.Integer({ minimum: 0, description: 'Most a tenant may use per UTC calendar month.' }),
    ),
  },
  { additionalProperties: false },
);

export const QuotaDefinition = T.Object(
  {
    counts: T.Optional(
      T.Union(
        [
          T.Literal('requests'),
          T.Object(
            {
              header: {
                ...HeaderName,
                description:
                  'The upstream response header whose integer value is added after the response (e.g. `x-tokens-used`).',
              },
            },
            { additionalProperties: false },
          ),
        ],
        {
          description:
            '`requests` (default): each admitted request counts 1, checked and counted in one atomic step. `{ header }`: units from a response header; a request is admitted while usage is below the limit, its units are added after the response.',
        },
      ),
    ),
    plans: T.Record(T.String({ pattern: '^.{1,100}$' }), QuotaLimits, {
      description:
        'Limits per tenant plan; `default` applies to tenants whose plan is not listed (or have none). A tenant with neither is counted, not limited. Tenant labels `quota.<name>.daily` / `quota.<name>.monthly` (an integer or `unlimited`) override them per tenant.',
    }),
    onRedisError: T.Optional(OnRedisError),
  },
  { additionalProperties: false },
);

export const QuotasSettings = T.Object(
  {
    define: T.Record(T.String({ pattern: QUOTA_NAME }), QuotaDefinition, {
      description: 'The quotas, by name; routes name the ones they count against (`quota.use`).',
    }),
    persistEvery: T.Optional({
      ...Duration,
      description:
        'How often each replica adds the usage it counted to the store (default 5s); also on stop. A crash loses at most this much of its counting from the store (not from Redis).',
    }),
    onRedisError: T.Optional(OnRedisError),
  },
  {
    additionalProperties: false,
    description:
      'Quotas per tenant per UTC day and month, counted in Redis (or memory) and persisted to the store. See docs/quotas.md.',
  },
);

export const RouteQuota = T.Object(
  {
    use: T.Array(T.String({ pattern: QUOTA_NAME }), {
      minItems: 1,
      uniqueItems: true,
      description: 'The quotas (from `quotas.define`) this route counts against; all must have room.',
    }),
    header: T.Optional({
      ...HeaderName,
      description:
        "The response header with units on this route, instead of the unit quotas' own `counts.header`.",
    }),
  },
  {
    additionalProperties: false,
    description:
      'Quotas counted on this route, per tenant (the route needs `auth` or `tenant`). Over quota: 429 SLUICE-QUOTA-001 with Retry-After until the period resets.',
  },
);

export type QuotasConfig = Static<typeof QuotasSettings>;
export type QuotaDefinitionConfig = Static<typeof QuotaDefinition>;
export type RouteQuotaConfig = Static<typeof RouteQuota>;
