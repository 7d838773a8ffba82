/**
 * Prometheus recording and alerting rules from the route table (`sluice slo rules`).
 *
 * Per objective (a route's availability, or one latency percentile): the error ratio over the SRE
 * workbook's windows, the ratio over the SLO period, the budget left, and the workbook's
 * multi-window, multi-burn-rate alerts (ch. 5, table 5-8) — one alert rule per window pair, so an
 * alert says by its labels which pair fired (a single rule OR-ing two pairs, as Sloth writes it,
 * cannot). Plus the seeds' fleet alerts: a route's error rate over 5% for 5 minutes, and Redis
 * p95 over 50 ms when the config uses Redis.
 */
import { stringify } from 'yaml';
import { withRunbooks } from './runbooks.js';
import type { Objective } from './schema.js';

/** The windows the alerts read (the workbook's short and long windows). */
export const SLI_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const;
type Window = (typeof SLI_WINDOWS)[number];

/**
 * The workbook's window pairs with the share of the budget each spends before it fires. The burn
 * rate is that share spread over the long window: 2% of 30 days in 1 h is 14.4x. For another SLO
 * period the same shares give other rates (28 d: 13.44x), as Sloth's and Pyrra's scaled windows do.
 */
export const BURN_TIERS: readonly {
  severity: 'page' | 'ticket';
  long: Window;
  short: Window;
  budgetShare: number;
}[] = [
  { severity: 'page', long: '1h', short: '5m', budgetShare: 0.02 },
  { severity: 'page', long: '6h', short: '30m', budgetShare: 0.05 },
  { severity: 'ticket', long: '1d', short: '2h', budgetShare: 0.1 },
  { severity: 'ticket', long: '3d', short: '6h', budgetShare: 0.1 },
];

const HOURS: Record<Window, number> = {
  '5m': 1 / 12,
  '30m': 0.5,
  '1h': 1,
  '2h': 2,
  '6h': 6,
  '1d': 24,
  '3d': 72,
};

export interface RecordingRule {
  record: string;
  expr: string;
  labels?: Record<string, string>;
}
export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}
export interface RuleGroup {
  name: string;
  rules: (RecordingRule | AlertingRule)[];
}
export interface RuleFile {
  groups: RuleGroup[];
}

export interface RulesInput {
  objectives: readonly Objective[];
  /** Whether the config uses Redis (top-level `redis`): only then is the Redis latency metric exported. */
  redis: boolean;
  /** Where the runbooks are published (runbooks.ts); default the repository path docs/runbooks/. */
  runbookBase?: string;
}

/** Round away float noise (0.02 × 720 is 14.399999999999999) so rules read as the workbook does. */
function tidy(n: number): number {
  return Number(n.toPrecision(10));
}

export function burnRate(budgetShare: number, windowDays: number, longWindow: Window): number {
  return tidy((budgetShare * windowDays * 24) / HOURS[longWindow]);
}

/** A label matcher value: PromQL strings are Go-quoted; route names ([A-Za-z0-9_.-]) need no escapes. */
function q(s: string): string {
  return JSON.stringify(s);
}

/**
 * The `le` matcher of a bucket edge. prom-client writes `le="1"`; Prometheus 3 normalises classic
 * histogram edges to `le="1.0"` on ingestion, so an integral edge matches both spellings.
 */
function leMatcher(seconds: number): string {
  const s = String(seconds);
  return s.includes('.') ? `le=${q(s)}` : `le=~${q(`${s}|${s}\\.0`)}`;
}

/** The bad-event ratio of an objective over a range, from Sluice's own series. */
function errorRatioExpr(o: Objective, range: string): string {
  const r = `route=${q(o.route)}`;
  // prom-client exports a 5xx series only from a route's first 5xx: until then `or 0 * all` stands
  // in, so a clean route reads 0 errors and a full budget instead of nothing.
  if (o.thresholdSeconds === undefined) {
    const all = `sum by (route) (rate(sluice_requests_total{${r}}[${range}]))`;
    return (
      `(\n  sum by (route) (rate(sluice_requests_total{${r},class="5xx"}[${range}]))\n  or\n  0 * ${all}\n)\n` +
      `/\n${all}`
    );
  }
  return (
    `1 - (\n  sum by (route) (rate(sluice_request_duration_seconds_bucket{${r},${leMatcher(o.thresholdSeconds)}}[${range}]))\n` +
    `  /\n  sum by (route) (rate(sluice_request_duration_seconds_count{${r}}[${range}]))\n)`
  );
}

function percent(ratio: number): string {
  return `${tidy(ratio * 100)}%`;
}

function describe(o: Objective): string {
  return o.thresholdSeconds === undefined
    ? `availability ${percent(o.target)} (non-5xx answers)`
    : `latency: ${percent(o.target)} of requests within ${tidy(o.thresholdSeconds * 1000)}ms`;
}

function objectiveGroup(o: Objective): RuleGroup {
  const sel = `{route=${q(o.route)},slo=${q(o.slo)}}`;
  // The route is a static label too, though `sum by (route)` keeps it: promtool lints two rules with
  // the same name and static labels as duplicates, and each route has rules of its own.
  const labels = { route: o.route, slo: o.slo };
  const budget = tidy(1 - o.target);
  const period = `${o.windowDays}d`;
  const rules: (RecordingRule | AlertingRule)[] = [];
  rules.push({
    record: 'sluice:slo_objective:ratio',
    expr: `vector(${o.target})`,
    labels: { route: o.route, slo: o.slo, window: period },
  });
  for (const w of SLI_WINDOWS)
    rules.push({ record: `sluice:slo_errors:ratio_rate${w}`, expr: errorRatioExpr(o, w), labels });
  rules.push({
    record: 'sluice:slo_errors:ratio_period',
    expr: errorRatioExpr(o, period),
    labels: { ...labels, window: period },
  });
  rules.push({
    record: 'sluice:slo_error_budget:remaining_ratio',
    expr: `1 - sluice:slo_errors:ratio_period${sel} / ${budget}`,
    labels: { ...labels, window: period },
  });
  for (const t of BURN_TIERS) {
    const rate = burnRate(t.budgetShare, o.windowDays, t.long);
    const threshold = tidy(rate * budget);
    rules.push({
      alert: 'SluiceErrorBudgetBurn',
      expr:
        `sluice:slo_errors:ratio_rate${t.long}${sel} > ${threshold}\n` +
        `and\nsluice:slo_errors:ratio_rate${t.short}${sel} > ${threshold}`,
      labels: {
        severity: t.severity,
        route: o.route,
        slo: o.slo,
        long_window: t.long,
        short_window: t.short,
        burn_rate: String(rate),
      },
      annotations: {
        summary: `Route ${o.route} burns its ${o.slo} error budget at over ${rate}x (fired on the ${t.long} and ${t.short} windows)`,
        description:
          `Objective: ${describe(o)} over ${period}, a budget of ${percent(budget)} bad events. ` +
          `The bad-event ratio is {{ $value | humanizePercentage }} over ${t.long} and above ${percent(threshold)} over ${t.short} too: ` +
          `at ${rate}x, ${percent(t.budgetShare)} of the ${period} budget goes in ${t.long}.`,
      },
    });
  }
  return { name: `sluice-slo-${o.route}-${o.slo}`, rules };
}

function seedGroup(redis: boolean): RuleGroup {
  const rules: AlertingRule[] = [
    {
      alert: 'SluiceRouteErrorRateHigh',
      expr:
        'sum by (route) (rate(sluice_requests_total{class="5xx"}[5m]))\n/\n' +
        'sum by (route) (rate(sluice_requests_total[5m]))\n> 0.05',
      for: '5m',
      labels: { severity: 'page' },
      annotations: {
        summary: 'Route {{ $labels.route }} answers over 5% 5xx for 5 minutes',
        description:
          'The 5xx share on route {{ $labels.route }} over 5m is {{ $value | humanizePercentage }}.',
      },
    },
  ];
  if (redis)
    rules.push({
      alert: 'SluiceRedisLatencyHigh',
      expr: 'histogram_quantile(0.95, sum by (instance, le) (rate(sluice_redis_command_duration_seconds_bucket[5m])))\n> 0.05',
      for: '5m',
      labels: { severity: 'ticket' },
      annotations: {
        summary: 'Redis p95 over 50ms on {{ $labels.instance }} for 5 minutes',
        description:
          'p95 of the Redis commands of the limit, quota and cache policies is {{ $value | humanizeDuration }} on {{ $labels.instance }}.',
      },
    });
  return { name: 'sluice-fleet', rules };
}

export function generateRules(input: RulesInput): RuleFile {
  return withRunbooks(
    { groups: [...input.objectives.map(objectiveGroup), seedGroup(input.redis)] },
    input.runbookBase,
  );
}

/** The rule file as YAML, with a header that says what it came from and what it left out. */
export function renderRules(input: RulesInput, source: string): string {
  const head = [
    `# Generated by \`sluice slo rules\` from ${source}: do not edit, regenerate.`,
    `# ${input.objectives.length} objective(s); docs/slo.md explains every rule.`,
  ];
  if (!input.redis)
    head.push(
      '# No SluiceRedisLatencyHigh alert: the config has no `redis`, so no Redis latency is exported.',
    );
  return `${head.join('\n')}\n${stringify(generateRules(input), { lineWidth: 0, aliasDuplicateObjects: false })}`;
}
