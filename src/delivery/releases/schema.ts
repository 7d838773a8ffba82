/**
 * `releases`: declarative canary and blue/green releases, one per route. The file says what the
 * release is (versions, steps, analysis, stickiness, overrides, cohorts, mirroring); where it is
 * (step, weight, decisions) lives in the store (releases/store.ts) so it survives restarts and
 * reloads, and the admin API and `sluice release` start, pause, resume, promote and abort it.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../../config/shared-schema.js';
import { BUCKETING_VERSIONS } from '../bucketing.js';

const Percent = T.Number({ minimum: 0, maximum: 100 });

const Step = T.Object(
  {
    weight: {
      ...Percent,
      description: 'Share of the sticky keys on the candidate during this step, percent.',
    },
    duration: T.Optional({
      ...Duration,
      description: 'Minimum time at this step before it can advance; default 1m.',
    }),
    minRequests: T.Optional(
      T.Integer({
        minimum: 0,
        description: 'Minimum candidate requests measured at this step before it can advance; default 100.',
      }),
    ),
  },
  { additionalProperties: false },
);

const Cohort = T.Object(
  {
    tenants: T.Optional(T.Array(T.String(), { description: 'Tenant ids.' })),
    plans: T.Optional(T.Array(T.String(), { description: 'Tenant plans.' })),
    regions: T.Optional(T.Array(T.String(), { description: 'Tenant regions.' })),
    labels: T.Optional(
      T.Record(T.String(), T.String(), { description: 'Tenant labels that must all match.' }),
    ),
    duration: T.Optional({ ...Duration, description: 'Minimum time for this cohort alone; default 1m.' }),
    minRequests: T.Optional(T.Integer({ minimum: 0, description: 'Default 100.' })),
  },
  {
    additionalProperties: false,
    description:
      'A cohort step: these tenants (any of the lists) go to the candidate before any percentage; cohorts accumulate.',
  },
);

const Analysis = T.Object(
  {
    interval: T.Optional({ ...Duration, description: 'How often the driving replica judges; default 10s.' }),
    minSamples: T.Optional(
      T.Integer({
        minimum: 1,
        description:
          'Fewer requests than this in either version: insufficient data (hold, never promote, never roll back); default 50.',
      }),
    ),
    errors: T.Optional(
      T.Object(
        {
          maxRate: T.Optional(T.Number({ minimum: 0, maximum: 1 })),
          maxIncrease: T.Optional(T.Number({ minimum: 0, maximum: 1 })),
          alpha: T.Optional(T.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
        },
        { additionalProperties: false },
      ),
    ),
    latency: T.Optional(
      T.Object(
        {
          quantiles: T.Optional(T.Array(T.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }))),
          maxRatio: T.Optional(T.Number({ minimum: 1 })),
          minIncreaseMs: T.Optional(T.Number({ minimum: 0 })),
          maxMs: T.Optional(
            T.Record(T.String({ pattern: '^p[0-9]+(\\.[0-9]+)?$' }), T.Number({ minimum: 0 })),
          ),
          confidence: T.Optional(T.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
          alpha: T.Optional(T.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })),
          maxCles: T.Optional(
            T.Number({
              minimum: 0.5,
              exclusiveMaximum: 1,
              description: 'The rank test fails only when P(candidate slower) is above this; default 0.7.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    burnRate: T.Optional(
      T.Object(
        {
          maxRate: T.Number({
            exclusiveMinimum: 0,
            description:
              "Fail when the candidate burns an error budget of the route's `slo` faster than this (1 = exactly the budget over the SLO period).",
          }),
          window: T.Optional({
            ...Duration,
            description: 'The window the burn rate is measured over, ending at the judgement; default 5m.',
          }),
        },
        {
          additionalProperties: false,
          description:
            "Burn-rate gate: the candidate's burn rate of each objective of the route's `slo` over `window` (the fleet's figures); needs `routes[].slo` (docs/releases-analysis.md).",
        },
      ),
    ),
    failureLimit: T.Optional(
      T.Integer({ minimum: 0, description: 'Failed judgements tolerated before rolling back; default 0.' }),
    ),
    inconclusiveLimit: T.Optional(
      T.Integer({
        minimum: 0,
        description:
          'Consecutive insufficient judgements past a step’s duration before the release pauses; default 30.',
      }),
    ),
    maxDuration: T.Optional({
      ...Duration,
      description: 'A release still running after this long is rolled back; default 24h.',
    }),
  },
  { additionalProperties: false },
);

const Mirror = T.Object(
  {
    percent: T.Optional({
      ...Percent,
      description: 'Share of stable requests copied to the candidate; default 100.',
    }),
    maxPerSecond: T.Optional(
      T.Number({ minimum: 0, description: 'Bound on mirrored requests per second; default 50.' }),
    ),
    compare: T.Optional(
      T.Object(
        {
          status: T.Optional(T.Boolean({ description: 'Count answers whose status differs; default true.' })),
          body: T.Optional(
            T.Boolean({ description: 'Count answers whose body digest differs; default false.' }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    methods: T.Optional(
      T.Array(T.String(), { description: 'Methods mirrored; default GET, HEAD, OPTIONS.' }),
    ),
  },
  {
    additionalProperties: false,
    description: 'Shadow traffic to the candidate: answers discarded, never slowing the client.',
  },
);

export const Release = T.Object(
  {
    route: T.String({ description: 'The route released (its `name`).' }),
    stable: T.Optional(
      T.String({ description: "The stable upstream group; default the route's `upstream`." }),
    ),
    candidate: T.String({ description: 'The candidate upstream group.' }),
    strategy: T.Optional(
      T.Union([T.Literal('canary'), T.Literal('blueGreen')], { description: 'Default canary.' }),
    ),
    steps: T.Optional(
      T.Array(Step, {
        minItems: 1,
        description: 'Canary steps, weights non-decreasing; a last step below 100 is followed by promotion.',
      }),
    ),
    preview: T.Optional({
      ...Duration,
      description:
        'Blue/green: how long the candidate is judged on mirrored and header-selected traffic before the switch; default 1m.',
    }),
    rollbackWindow: T.Optional({
      ...Duration,
      description:
        'Blue/green: how long the old version stays warm after the switch for an instant rollback; default 5m.',
    }),
    cohorts: T.Optional(T.Array(Cohort)),
    sticky: T.Optional(
      T.Object(
        {
          by: T.Optional(
            T.Array(
              T.String({
                pattern: '^(tenant|apiKey|principal|ip|header:[A-Za-z0-9-]+|cookie:[A-Za-z0-9_.-]+)$',
              }),
              {
                minItems: 1,
                description:
                  'Where the sticky key comes from, first present wins: tenant, apiKey, principal (the token subject), header:NAME, cookie:NAME, ip. Default [principal, tenant, ip].',
              },
            ),
          ),
          seed: T.Optional(T.String({ description: "Salt of the bucketing; default the release's name." })),
        },
        { additionalProperties: false },
      ),
    ),
    bucketing: T.Optional(
      T.Union(
        BUCKETING_VERSIONS.map((v) => T.Literal(v)),
        {
          description:
            'Bucketing function version (docs/bucketing.md); default v1, kept once the release started.',
        },
      ),
    ),
    overrides: T.Optional(
      T.Object(
        {
          header: T.Optional(
            T.String({
              description:
                'Request header forcing a version: value `stable` or `candidate`; default x-sluice-version.',
            }),
          ),
          tenants: T.Optional(
            T.Object(
              {
                candidate: T.Optional(T.Array(T.String())),
                stable: T.Optional(T.Array(T.String())),
              },
              { additionalProperties: false },
            ),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    analysis: T.Optional(Analysis),
    mirror: T.Optional(Mirror),
    start: T.Optional(
      T.Union([T.Literal('auto'), T.Literal('manual')], {
        description:
          '`auto` (default): starts when the config is loaded; `manual`: waits for `sluice release start`.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ReleasesSettings = T.Record(T.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), Release, {
  description: 'Canary and blue/green releases by name (docs/releases.md).',
});

export type ReleaseConfig = Static<typeof Release>;
