/**
 * A feature flag as the store keeps it and the admin API takes it: variants (all of one type:
 * boolean, string, number or JSON object), a default variant, targeting rules tried in order (the
 * first whose conditions all hold decides), and a percentage rollout for everyone else. One TypeBox
 * source gives the admin API's request schema, the OpenAPI document and the TypeScript type;
 * `flagProblems` adds what a schema cannot say (references, weights, types, regexes).
 * See docs/flags.md.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { BUCKETING_VERSIONS, BUCKETS, bucketsFor } from '../bucketing.js';

export const FLAG_KEY = /^[a-z0-9][a-z0-9_.-]{0,127}$/;

export const FlagKey = T.String({
  pattern: '^[a-z0-9][a-z0-9_.-]{0,127}$',
  description: '1-128 lowercase letters, digits, `_`, `.` or `-`, starting with a letter or digit.',
});

const Scalar = T.Union([T.String(), T.Number(), T.Boolean()]);

export const Condition = T.Object(
  {
    attribute: T.String({
      minLength: 1,
      maxLength: 200,
      description:
        '`tenant.id`, `tenant.plan`, `tenant.region`, `tenant.name`, `tenant.labels.<name>` (the tenant Sluice verified), `principal` (the verified caller), `targetingKey`, `header.<name>` (a request header; never an identity header), or any other name: an attribute of the OFREP evaluation context.',
    }),
    in: T.Optional(
      T.Array(Scalar, { minItems: 1, description: 'Holds when the attribute is one of these.' }),
    ),
    notIn: T.Optional(
      T.Array(Scalar, {
        minItems: 1,
        description: 'Holds when the attribute is absent or none of these.',
      }),
    ),
    present: T.Optional(T.Boolean({ description: 'true: the attribute is present; false: absent.' })),
    matches: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 500,
        description: 'The attribute (a string) matches this regular expression (JavaScript syntax).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description: 'One test of one attribute: exactly one of in, notIn, present, matches.',
  },
);

export const Rollout = T.Object(
  {
    by: T.Union([T.Literal('tenant'), T.Literal('user')], {
      description:
        'What is sticky: `tenant` (the verified tenant id: a whole tenant is in or out) or `user` (the targeting key: OFREP `targetingKey`, on a route the verified principal).',
    }),
    variants: T.Array(
      T.Object(
        {
          variant: T.String({ minLength: 1 }),
          weight: T.Number({ minimum: 0, maximum: 100, description: 'Percent, two decimals at most.' }),
        },
        { additionalProperties: false },
      ),
      {
        minItems: 1,
        description:
          'Weights summing to 100, in bucket order: the first variant takes buckets [0, w₁), the next [w₁, w₁+w₂), ... Growing the first weight only adds members to it.',
      },
    ),
  },
  { additionalProperties: false, description: 'A percentage rollout, sticky by tenant or user.' },
);

export const Rule = T.Object(
  {
    name: T.Optional(T.String({ minLength: 1, maxLength: 100 })),
    when: T.Array(Condition, { minItems: 1, description: 'Every condition must hold.' }),
    variant: T.Optional(T.String({ minLength: 1, description: 'The variant served when the rule matches.' })),
    rollout: T.Optional(Rollout),
  },
  { additionalProperties: false, description: 'Exactly one of variant or rollout.' },
);

export const FlagSpec = T.Object(
  {
    description: T.Optional(T.String({ maxLength: 1000 })),
    enabled: T.Boolean({
      description: 'false: every evaluation serves the default variant (reason DISABLED).',
    }),
    variants: T.Record(T.String({ minLength: 1, maxLength: 100 }), T.Unknown(), {
      description: 'Variant name → value. All values of one type: boolean, string, number or JSON object.',
    }),
    defaultVariant: T.String({ minLength: 1 }),
    rules: T.Optional(T.Array(Rule, { maxItems: 100 })),
    rollout: T.Optional(Rollout),
    bucketing: T.Optional(
      T.Union(
        BUCKETING_VERSIONS.map((v) => T.Literal(v)),
        {
          description:
            'The bucketing function, kept for the life of the flag (docs/bucketing.md); default the newest (v1). Changing it reassigns users.',
        },
      ),
    ),
    seed: T.Optional(
      T.String({
        minLength: 1,
        maxLength: 200,
        description: 'Salt of the bucketing; default the flag key. Change it to reshuffle everyone.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type FlagSpecT = Static<typeof FlagSpec>;
export type ConditionT = Static<typeof Condition>;
export type RolloutT = Static<typeof Rollout>;

export type FlagValueType = 'boolean' | 'string' | 'number' | 'object';

export function valueType(v: unknown): FlagValueType | undefined {
  if (typeof v === 'boolean') return 'boolean';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isFinite(v) ? 'number' : undefined;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) return 'object';
  return undefined;
}

/**
 * Request headers no rule may read: credentials, and the identity headers Sluice sets for the
 * upstream (tenant, principal). A rule that names one is refused when the flag is written; the
 * gateway also hides the names its config uses (forwarded identity headers) at evaluation.
 */
export const HIDDEN_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
  'x-sluice-tenant',
  'x-sluice-principal',
  'x-sluice-flags',
]);

/** What the schema cannot check; each problem is a JSON pointer and a message. */
export function flagProblems(s: FlagSpecT): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const names = Object.keys(s.variants);
  if (names.length === 0) out.push({ path: '/variants', message: 'at least one variant' });
  let type: FlagValueType | undefined;
  for (const n of names) {
    const t = valueType(s.variants[n]);
    if (t === undefined)
      out.push({
        path: `/variants/${n}`,
        message: 'a variant is a boolean, a string, a finite number or a JSON object',
      });
    else if (type === undefined) type = t;
    else if (t !== type)
      out.push({ path: `/variants/${n}`, message: `every variant has the type of the first (${type})` });
  }
  if (!Object.hasOwn(s.variants, s.defaultVariant))
    out.push({ path: '/defaultVariant', message: `no variant "${s.defaultVariant}"` });
  const rollout = (r: RolloutT, at: string) => {
    let total = 0;
    r.variants.forEach((v, i) => {
      if (!Object.hasOwn(s.variants, v.variant))
        out.push({ path: `${at}/variants/${i}/variant`, message: `no variant "${v.variant}"` });
      if (Math.abs(bucketsFor(v.weight) - v.weight * 100) > 1e-6)
        out.push({ path: `${at}/variants/${i}/weight`, message: 'two decimals at most' });
      total += bucketsFor(v.weight);
    });
    if (total !== BUCKETS)
      out.push({ path: `${at}/variants`, message: `weights sum to ${total / 100}, not 100` });
  };
  s.rules?.forEach((r, i) => {
    const at = `/rules/${i}`;
    if ((r.variant === undefined) === (r.rollout === undefined))
      out.push({ path: at, message: 'exactly one of variant or rollout' });
    if (r.variant !== undefined && !Object.hasOwn(s.variants, r.variant))
      out.push({ path: `${at}/variant`, message: `no variant "${r.variant}"` });
    if (r.rollout) rollout(r.rollout, `${at}/rollout`);
    r.when.forEach((c, j) => {
      const cat = `${at}/when/${j}`;
      const ops = [c.in, c.notIn, c.present, c.matches].filter((o) => o !== undefined).length;
      if (ops !== 1) out.push({ path: cat, message: 'exactly one of in, notIn, present, matches' });
      if (c.matches !== undefined) {
        try {
          new RegExp(c.matches);
        } catch (err) {
          out.push({
            path: `${cat}/matches`,
            message: `invalid regular expression: ${(err as Error).message}`,
          });
        }
      }
      const a = c.attribute;
      if (a.startsWith('header.')) {
        const h = a.slice(7).toLowerCase();
        if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(h))
          out.push({ path: `${cat}/attribute`, message: 'not a header name' });
        else if (HIDDEN_HEADERS.has(h))
          out.push({
            path: `${cat}/attribute`,
            message: `${h} carries credentials or identity: target tenant.* or principal instead`,
          });
      }
      if (a === 'tenant' || a === 'tenant.labels' || (a.startsWith('tenant.') && !TENANT_ATTRIBUTE.test(a)))
        out.push({
          path: `${cat}/attribute`,
          message:
            'tenant attributes: tenant.id, tenant.name, tenant.plan, tenant.region, tenant.labels.<name>',
        });
    });
  });
  if (s.rollout) rollout(s.rollout, '/rollout');
  return out;
}

const TENANT_ATTRIBUTE = /^tenant\.(id|name|plan|region|labels\..+)$/;
