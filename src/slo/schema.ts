/**
 * A route's service-level objectives (`routes[].slo`): the config shape, its checks, and the
 * parsed form the rule generator (./rules.ts) reads. A leaf apart from TypeBox and the duration
 * parser, so config/schema.ts can import it without a cycle.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../config/shared-schema.js';
import { ms } from '../config/units.js';
import { REQUEST_DURATION_BUCKETS } from '../telemetry/request-buckets.js';

const Percent = T.String({
  pattern: '^[0-9]{1,2}(\\.[0-9]+)?%$',
  description: 'A percentage below 100, such as `99.95%`.',
});

export const SloSchema = T.Object(
  {
    availability: T.Optional({
      ...Percent,
      description:
        'Share of requests that must not be answered 5xx (by Sluice or the upstream), such as `99.95%`.',
    }),
    latency: T.Optional(
      T.Record(T.String({ pattern: '^p[1-9][0-9]?(\\.[0-9]+)?$' }), Duration, {
        minProperties: 1,
        description:
          'Percentile → threshold, such as `{ p95: 200ms }`: at least 95% of requests complete within 200ms. Each threshold must be a bucket edge of `sluice_request_duration_seconds` (see docs/slo.md).',
      }),
    ),
    window: T.Optional(
      T.String({
        pattern: '^[1-9][0-9]*d$',
        description: 'The SLO period the error budget is spent over, in days (`30d`, default; `28d`, `7d`).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Service-level objectives of this route; `sluice slo rules` turns them into Prometheus recording and multi-window, multi-burn-rate alerting rules. See docs/slo.md.',
  },
);

export type SloConfig = Static<typeof SloSchema>;

/** One objective of one route, as the generator needs it. */
export interface Objective {
  route: string;
  /** `availability` or `latency-p95` (a label value, so no dots: `latency-p99_9`). */
  slo: string;
  /** The target share of good events, e.g. 0.9995. */
  target: number;
  /** Only for latency objectives: the threshold in seconds (a bucket edge). */
  thresholdSeconds?: number;
  /** The SLO period in days. */
  windowDays: number;
}

/** A problem at a path relative to the route's `slo` (config/semantics.ts prefixes the route). */
export interface SloProblem {
  path: (string | number)[];
  message: string;
}

/** `99.95%` → 0.9995, computed from the digits so no binary rounding sneaks in (99.95/100 is 0.9995000000000001). */
export function percentToRatio(p: string): number {
  const digits = p.slice(0, -1);
  const [int, frac = ''] = digits.split('.');
  return Number(`0.${int!.padStart(2, '0')}${frac}`);
}

/** Checks the schema cannot express: thresholds that are bucket edges, non-zero budgets. */
export function checkSlo(slo: SloConfig): SloProblem[] {
  const out: SloProblem[] = [];
  if (slo.availability === undefined && slo.latency === undefined)
    out.push({ path: [], message: 'an slo needs `availability`, `latency` or both' });
  if (slo.availability !== undefined && percentToRatio(slo.availability) <= 0)
    out.push({ path: ['availability'], message: 'must be above 0%' });
  for (const [p, d] of Object.entries(slo.latency ?? {})) {
    const target = percentToRatio(`${p.slice(1)}%`);
    if (target <= 0 || target >= 1)
      out.push({ path: ['latency', p], message: 'percentile must be between 0 and 100' });
    const seconds = ms(d, 0) / 1000;
    if (!REQUEST_DURATION_BUCKETS.includes(seconds))
      out.push({
        path: ['latency', p],
        message: `${d} is not a bucket edge of sluice_request_duration_seconds, so the SLI would be interpolated; use one of ${REQUEST_DURATION_BUCKETS.map((s) => `${s * 1000}ms`).join(', ')}`,
      });
  }
  return out;
}

/** Every objective of every route that declares one, in route order. */
export function objectivesOf(routes: readonly { name: string; slo?: SloConfig }[]): Objective[] {
  const out: Objective[] = [];
  for (const r of routes) {
    const slo = r.slo;
    if (slo === undefined) continue;
    const windowDays = Number((slo.window ?? '30d').slice(0, -1));
    if (slo.availability !== undefined)
      out.push({ route: r.name, slo: 'availability', target: percentToRatio(slo.availability), windowDays });
    for (const [p, d] of Object.entries(slo.latency ?? {}))
      out.push({
        route: r.name,
        slo: `latency-${p.replace('.', '_')}`,
        target: percentToRatio(`${p.slice(1)}%`),
        thresholdSeconds: ms(d, 0) / 1000,
        windowDays,
      });
  }
  return out;
}
