/**
 * `anomaly:` in the config: detection of latency, error-rate and cost anomalies per route and
 * upstream against a learned baseline (docs/anomaly.md). Global settings, with per-upstream
 * overrides of everything but the interval (one timer judges every series at once).
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../config/shared-schema.js';

const Signal = T.Object(
  {
    enabled: T.Optional(T.Boolean({ description: 'Judge this signal; default true.' })),
    bands: T.Optional(
      T.Number({
        exclusiveMinimum: 0,
        description:
          'How many EWMA deviations above the EWMA mean an interval must be to count as anomalous; default from `anomaly.bands`.',
      }),
    ),
    minRelative: T.Optional(
      T.Number({
        minimum: 0,
        description:
          'The least rise, as a fraction of the mean, that counts (a band never narrower than this); defaults: latency 0.2, errors 0, cost 0.2.',
      }),
    ),
    minAbsolute: T.Optional(
      T.Number({
        minimum: 0,
        description:
          'The least rise, in the signal’s unit (latency ms, errors a ratio 0..1, cost currency units per request), that counts; defaults: latency 5, errors 0.05, cost 0.',
      }),
    ),
  },
  { additionalProperties: false },
);

const tuning = {
  alpha: T.Optional(
    T.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      description:
        'EWMA weight of each new interval in the baseline mean and deviation; default 0.05 (a half-life of about 14 intervals).',
    }),
  ),
  bands: T.Optional(
    T.Number({
      exclusiveMinimum: 0,
      description: 'Deviation bands above the mean before an interval is anomalous; default 4.',
    }),
  ),
  warmup: T.Optional(
    T.Integer({
      minimum: 1,
      description:
        'Intervals with enough volume learned before any is judged; default 30 (5 minutes at 10 s).',
    }),
  ),
  minRequests: T.Optional(
    T.Integer({
      minimum: 1,
      description:
        'Requests an interval needs to be judged or learned; quieter intervals are skipped. Default 20.',
    }),
  ),
  enterAfter: T.Optional(
    T.Integer({
      minimum: 1,
      description: 'Consecutive anomalous intervals before an anomaly starts; default 3.',
    }),
  ),
  leaveAfter: T.Optional(
    T.Integer({
      minimum: 1,
      description: 'Consecutive normal intervals before an anomaly ends; default 5.',
    }),
  ),
  latency: T.Optional(Signal),
  errors: T.Optional(Signal),
  cost: T.Optional(Signal),
  action: T.Optional(
    T.Union([T.Literal('failover'), T.Literal('rollback')], {
      description:
        'What an anomaly does besides its events and metrics (./actions.ts, docs/anomaly.md#actions): `failover` — a latency or errors anomaly makes the route’s `failover` treat its upstream group as failed until the anomaly ends; `rollback` — any anomaly of a route with a running release aborts the release. Default: none.',
    }),
  ),
};

const Tuning = T.Object(tuning, { additionalProperties: false });

export const AnomalySettings = T.Object(
  {
    enabled: T.Optional(T.Boolean({ description: 'Default true when `anomaly` is present.' })),
    interval: T.Optional({
      ...Duration,
      description: 'How often intervals are judged (the length of one interval); default 10s.',
    }),
    ...tuning,
    upstreams: T.Optional(
      T.Record(T.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$' }), Tuning, {
        description: 'Per upstream group: settings that replace the global ones for its routes.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Anomaly detection per route and upstream: mean latency, error ratio and cost per request of each interval against an EWMA baseline, with warm-up, minimum volume and hysteresis. See docs/anomaly.md.',
  },
);

export type AnomalyConfig = Static<typeof AnomalySettings>;
export type AnomalyTuning = Static<typeof Tuning>;
