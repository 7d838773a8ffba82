/**
 * Request and response schemas of the admin API (TypeBox: JSON Schema and TypeScript types from one
 * source). Fastify validates requests with them, the admin server validates every response against
 * them before it leaves, and @fastify/swagger publishes them in /openapi.json. Response objects are
 * closed (`additionalProperties: false`): a field that is not declared (a key hash, say) makes the
 * response fail instead of leaking.
 */
import { type Static, Type as T, type TSchema } from '@sinclair/typebox';
import { problemContentType } from '../errors/problem.js';

const closed = { additionalProperties: false } as const;

export const Problem = T.Object(
  {
    type: T.String(),
    title: T.String(),
    status: T.Integer(),
    code: T.String({ pattern: '^SLUICE-[A-Z]+-[0-9]{3}$' }),
    detail: T.Optional(T.String()),
    instance: T.Optional(T.String()),
  },
  {
    additionalProperties: true,
    description: 'An RFC 9457 problem with the stable `code` of docs/errors.md.',
  },
);

/** A response whose body is a problem (application/problem+json). */
export function problemResponse(description: string) {
  return { description, content: { [problemContentType]: { schema: Problem } } };
}

const DateTime = T.String({ format: 'date-time' });
const NullableText = T.Union([T.String({ minLength: 1, maxLength: 100 }), T.Null()]);
const Labels = T.Record(T.String({ minLength: 1, maxLength: 100 }), T.String({ maxLength: 500 }), {
  description: 'Free-form labels, name → value.',
});

export const TenantId = T.String({
  pattern: '^[a-z0-9][a-z0-9-]{0,62}$',
  description: '1-63 lowercase letters, digits or dashes, starting with a letter or digit.',
});
export const KeyId = T.String({
  pattern: '^[A-Za-z0-9_-]{1,64}$',
  description: 'The public id of an API key.',
});

export const Tenant = T.Object(
  {
    id: TenantId,
    name: T.String(),
    region: T.Union([T.String(), T.Null()], { description: 'Data-residency tag.' }),
    plan: T.Union([T.String(), T.Null()]),
    labels: Labels,
    status: T.Union([T.Literal('active'), T.Literal('suspended')]),
    createdAt: DateTime,
    updatedAt: DateTime,
  },
  closed,
);

export const TenantCreate = T.Object(
  {
    id: TenantId,
    name: T.String({ minLength: 1, maxLength: 200 }),
    region: T.Optional(NullableText),
    plan: T.Optional(NullableText),
    labels: T.Optional(Labels),
  },
  closed,
);

export const TenantPatch = T.Object(
  {
    name: T.Optional(T.String({ minLength: 1, maxLength: 200 })),
    region: T.Optional(NullableText),
    plan: T.Optional(NullableText),
    labels: T.Optional(Labels),
  },
  { ...closed, minProperties: 1 },
);

export const ApiKey = T.Object(
  {
    id: KeyId,
    tenantId: TenantId,
    name: T.String(),
    prefix: T.String({ description: '`sk_<id>_`: recognises the key in logs, never enough to use it.' }),
    scopes: T.Array(T.String()),
    expiresAt: T.Union([DateTime, T.Null()]),
    revokedAt: T.Union([DateTime, T.Null()]),
    createdAt: DateTime,
    lastUsedAt: T.Union([DateTime, T.Null()]),
    status: T.Union([T.Literal('active'), T.Literal('expired'), T.Literal('revoked')]),
  },
  { ...closed, description: 'An API key without its secret: the secret is shown once, at creation.' },
);

export const ApiKeyCreate = T.Object(
  {
    name: T.String({ minLength: 1, maxLength: 200 }),
    scopes: T.Optional(T.Array(T.String({ minLength: 1, maxLength: 200 }), { maxItems: 100 })),
    expiresAt: T.Optional(T.Union([DateTime, T.Null()])),
  },
  closed,
);

export const ApiKeyCreated = T.Object(
  {
    key: ApiKey,
    secret: T.String({
      description: 'The whole key, `sk_<id>_<secret>`. Shown this once; only its hash is kept.',
    }),
  },
  closed,
);

export const Change = T.Object(
  {
    id: T.String({ pattern: '^[0-9]+$' }),
    at: DateTime,
    actor: T.String(),
    role: T.String(),
    action: T.String(),
    target: T.String(),
    before: T.Unknown(),
    after: T.Unknown(),
  },
  closed,
);

export const ChangesQuery = T.Object(
  {
    limit: T.Optional(T.Integer({ minimum: 1, maximum: 500, default: 50 })),
    before: T.Optional(
      T.String({
        pattern: '^[0-9]{1,18}$',
        description: 'Only changes older than this id (the `next` of a page).',
      }),
    ),
  },
  closed,
);

export const ChangesPage = T.Object(
  {
    changes: T.Array(Change, { description: 'Newest first.' }),
    next: T.Union([T.String(), T.Null()], {
      description: 'Pass as `before` for the next (older) page; null on the last page.',
    }),
  },
  closed,
);

export const TenantParams = T.Object({ id: TenantId }, closed);
export const KeyParams = T.Object({ id: TenantId, keyId: KeyId }, closed);

export const ConfigView = T.Object(
  {
    version: T.String(),
    file: T.String(),
    loadedAt: DateTime,
    source: T.String({ description: 'The config text as written: `${VAR}` references, never their values.' }),
  },
  closed,
);

export const VersionView = T.Object(
  {
    sluice: T.String({ description: 'Version of Sluice.' }),
    config: T.String({ description: 'Version (content hash) of the running config.' }),
    loadedAt: DateTime,
  },
  closed,
);

export const ReloadResult = T.Union([
  T.Object({ result: T.Literal('applied'), version: T.String(), previous: T.String() }, closed),
  T.Object({ result: T.Literal('unchanged'), version: T.String() }, closed),
]);

const Target = T.Object(
  {
    id: T.String(),
    origin: T.String(),
    weight: T.Number(),
    inflight: T.Integer(),
    available: T.Boolean(),
    healthy: T.Boolean(),
    ejected: T.Boolean(),
    ejectedForMs: T.Optional(T.Number()),
    ejections: T.Integer(),
    consecutiveFailures: T.Integer(),
    breaker: T.Optional(T.String()),
    lastCheck: T.Optional(
      T.Object({ at: DateTime, ok: T.Boolean(), detail: T.Optional(T.String()) }, closed),
    ),
  },
  closed,
);

export const UpstreamsView = T.Object(
  {
    upstreams: T.Array(
      T.Object(
        {
          name: T.String(),
          healthCheck: T.Boolean(),
          outlier: T.Boolean(),
          circuitOpen: T.Boolean(),
          available: T.Integer(),
          targets: T.Array(Target),
        },
        closed,
      ),
    ),
  },
  closed,
);

export const RoutesView = T.Object(
  {
    routes: T.Array(
      T.Object(
        {
          name: T.String(),
          hosts: T.Union([T.Array(T.String()), T.Null()]),
          methods: T.Union([T.Array(T.String()), T.Null()]),
          upstream: T.String({ description: 'The upstream group configured for the route.' }),
          activeUpstream: T.String({ description: 'The group serving it now (differs during failover).' }),
          availableTargets: T.Integer(),
          serving: T.Boolean({ description: 'Whether the route has a target to send requests to.' }),
        },
        closed,
      ),
    ),
  },
  closed,
);

export const Health = T.Object(
  {
    status: T.String(),
    version: T.Optional(T.String()),
    unavailable: T.Optional(T.Array(T.Object({ route: T.String(), upstream: T.String() }, closed))),
  },
  closed,
);

export const Empty = T.Null({ description: 'No content.' });

export type TenantT = Static<typeof Tenant>;
export type TenantCreateT = Static<typeof TenantCreate>;
export type TenantPatchT = Static<typeof TenantPatch>;
export type ApiKeyT = Static<typeof ApiKey>;
export type ApiKeyCreateT = Static<typeof ApiKeyCreate>;
export type ChangesQueryT = Static<typeof ChangesQuery>;
export type TenantParamsT = Static<typeof TenantParams>;
export type KeyParamsT = Static<typeof KeyParams>;

/** Responses every authenticated endpoint may give besides its own. */
export function withAuthErrors(responses: Record<string, unknown>): Record<string, unknown> {
  return {
    ...responses,
    401: problemResponse('No or invalid credentials (SLUICE-ADMIN-001).'),
    403: problemResponse('The role lacks the permission (SLUICE-ADMIN-003).'),
  };
}

export type Schema = TSchema;

/** `limit` and `offset` of a paged list; `limit` says what its absence means for that list. */
function pageFields(max: number, limit: string, offset = 'Skip this many (with limit). Default 0.') {
  return {
    limit: T.Optional(T.Integer({ minimum: 1, maximum: max, description: limit })),
    offset: T.Optional(T.Integer({ minimum: 0, description: offset })),
  };
}

/** The query of a paged list. */
export function pageQuery(max: number, limit: string, offset?: string) {
  return T.Object(pageFields(max, limit, offset), { additionalProperties: false });
}

/** The query of a paged list searched by `q` (`search` says what it matches). */
export function searchedPageQuery(search: string, max: number, limit: string, offset?: string) {
  return T.Object(
    { q: T.Optional(T.String({ maxLength: 200, description: search })), ...pageFields(max, limit, offset) },
    { additionalProperties: false },
  );
}
