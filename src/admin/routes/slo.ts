/**
 * This replica's SLO figures and anomalies for the console: GET /admin/v1/slo (per route with an
 * `slo`, each objective's SLI, error budget left and burn rate per window, src/slo/live.ts) and
 * GET /admin/v1/anomalies (open ones and the recently ended, src/anomaly/service.ts). Both are
 * this process's view of its own traffic, as its gauges are; the fleet's are the Prometheus rules'.
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { anomalyKey } from '../../anomaly/service.js';
import { sloKey } from '../../slo/live.js';
import type { AdminContext } from '../context.js';
import { withAuthErrors } from '../schemas.js';

const closed = { additionalProperties: false } as const;
const Ratio = T.Union([T.Number(), T.Null()], { description: 'null without events (0/0).' });

const SloView = T.Object(
  {
    at: T.String({ format: 'date-time' }),
    routes: T.Array(
      T.Object(
        {
          route: T.String(),
          objectives: T.Array(
            T.Object(
              {
                slo: T.String({ description: '`availability` or `latency-p95`, …' }),
                target: T.Number(),
                thresholdSeconds: T.Optional(T.Number()),
                periodDays: T.Integer(),
                total: T.Number({ description: 'Events over the SLO period so far.' }),
                bad: T.Number(),
                sli: Ratio,
                budgetRemaining: { ...Ratio, description: '1 untouched, 0 spent, below 0 overspent.' },
                burn: T.Array(
                  T.Object({ window: T.String(), total: T.Number(), bad: T.Number(), rate: Ratio }, closed),
                ),
              },
              closed,
            ),
          ),
        },
        closed,
      ),
    ),
  },
  closed,
);

const Anomaly = T.Object(
  {
    route: T.String(),
    upstream: T.String(),
    signal: T.String({ description: '`latency`, `errors` or `cost`.' }),
    unit: T.String(),
    startedAt: T.String({ format: 'date-time' }),
    endedAt: T.Optional(T.String({ format: 'date-time' })),
    durationMs: T.Optional(T.Number()),
    value: T.Union([T.Number(), T.Null()]),
    baseline: T.Number(),
    threshold: T.Union([T.Number(), T.Null()]),
    peak: T.Number(),
    action: T.Optional(T.String()),
  },
  closed,
);

const AnomaliesView = T.Object(
  {
    enabled: T.Boolean({ description: 'Whether `anomaly` detection runs.' }),
    open: T.Array(Anomaly, { description: 'Under way, newest first.' }),
    recent: T.Array(Anomaly, { description: 'The last 50 ended, newest first.' }),
  },
  closed,
);

export function registerSloRoutes(app: FastifyInstance, { gw }: AdminContext): void {
  app.get(
    '/admin/v1/slo',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['health'],
        summary:
          "This replica's SLO figures per route: each objective's SLI and error budget left over its period, burn rate per window",
        response: withAuthErrors({ 200: SloView }),
      },
    },
    async () => {
      const now = Date.now();
      return { at: new Date(now).toISOString(), routes: gw.lifetimeValue(sloKey)?.view(now) ?? [] };
    },
  );

  app.get(
    '/admin/v1/anomalies',
    {
      config: { permission: 'health.read' },
      schema: {
        tags: ['health'],
        summary: "This replica's anomalies: the open ones and the last 50 ended",
        response: withAuthErrors({ 200: AnomaliesView }),
      },
    },
    async () => {
      const v = gw.lifetimeValue(anomalyKey)?.view();
      return {
        enabled: gw.runtime.config.anomaly !== undefined,
        open: v?.open ?? [],
        recent: v?.recent ?? [],
      };
    },
  );
}
