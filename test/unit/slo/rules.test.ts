/** `routes[].slo` at load time and the rules `sluice slo rules` generates (expected values written by hand from the SRE workbook). */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderMonitoringRules } from '../../../scripts/render-generated.js';
import { ConfigInvalidError, formatConfigError, loadConfigText } from '../../../src/config/load.js';
import { type AlertingRule, generateRules, type RecordingRule } from '../../../src/slo/rules.js';
import { objectivesOf } from '../../../src/slo/schema.js';

const config = (slo: string) => `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - name: api
    match: { path: { prefix: /api/ } }
    upstream: demo
    slo: ${slo}
`;

function problems(slo: string): string[] {
  try {
    loadConfigText(config(slo), 'conf.yaml', {});
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors.map(formatConfigError);
  }
  assert.fail('expected the config to be rejected');
}

function rulesOf(slo: string, redis = false) {
  const { config: c } = loadConfigText(config(slo), 'conf.yaml', {});
  return generateRules({ objectives: objectivesOf(c.routes), redis });
}

const alerts = (f: ReturnType<typeof generateRules>) =>
  f.groups.flatMap((g) => g.rules).filter((r): r is AlertingRule => 'alert' in r);
const records = (f: ReturnType<typeof generateRules>) =>
  f.groups.flatMap((g) => g.rules).filter((r): r is RecordingRule => 'record' in r);

test('the issue’s slo loads', () => {
  const { config: c } = loadConfigText(
    config('{ availability: 99.95%, latency: { p95: 200ms }, window: 30d }'),
    'conf.yaml',
    {},
  );
  assert.deepEqual(objectivesOf(c.routes), [
    { route: 'api', slo: 'availability', target: 0.9995, windowDays: 30 },
    { route: 'api', slo: 'latency-p95', target: 0.95, thresholdSeconds: 0.2, windowDays: 30 },
  ]);
});

test('bad objectives are refused with file, line, column and path', () => {
  assert.deepEqual(problems('{ latency: { p95: 250ms } }'), [
    'conf.yaml:10:28: /routes/0/slo/latency/p95: 250ms is not a bucket edge of sluice_request_duration_seconds, so the SLI would be interpolated; use one of 1ms, 2.5ms, 5ms, 10ms, 25ms, 50ms, 100ms, 200ms, 300ms, 500ms, 1000ms, 2500ms, 5000ms, 10000ms, 30000ms',
  ]);
  assert.match(problems('{ availability: 100% }')[0]!, /^conf\.yaml:10:26: \/routes\/0\/slo\/availability: /);
  assert.match(
    problems('{ window: 30d }')[0]!,
    /\/routes\/0\/slo: an slo needs `availability`, `latency` or both/,
  );
  assert.match(problems('{ availability: 99%, window: 4w }')[0]!, /\/routes\/0\/slo\/window: /);
  assert.match(problems('{ availability: 99%, colour: red }')[0]!, /\/routes\/0\/slo/);
});

test('30d availability 99.95%: the workbook’s four window pairs, each its own alert, at 14.4x, 6x, 3x, 1x', () => {
  const got = alerts(rulesOf('{ availability: 99.95% }'))
    .filter((a) => a.alert === 'SluiceErrorBudgetBurn')
    .map((a) => ({ ...a.labels, expr: a.expr }));
  const expr = (long: string, short: string, t: string) =>
    `sluice:slo_errors:ratio_rate${long}{route="api",slo="availability"} > ${t}\nand\nsluice:slo_errors:ratio_rate${short}{route="api",slo="availability"} > ${t}`;
  const base = { route: 'api', slo: 'availability' };
  assert.deepEqual(got, [
    {
      severity: 'page',
      ...base,
      long_window: '1h',
      short_window: '5m',
      burn_rate: '14.4',
      expr: expr('1h', '5m', '0.0072'),
    },
    {
      severity: 'page',
      ...base,
      long_window: '6h',
      short_window: '30m',
      burn_rate: '6',
      expr: expr('6h', '30m', '0.003'),
    },
    {
      severity: 'ticket',
      ...base,
      long_window: '1d',
      short_window: '2h',
      burn_rate: '3',
      expr: expr('1d', '2h', '0.0015'),
    },
    {
      severity: 'ticket',
      ...base,
      long_window: '3d',
      short_window: '6h',
      burn_rate: '1',
      expr: expr('3d', '6h', '0.0005'),
    },
  ]);
  const summary = alerts(rulesOf('{ availability: 99.95% }'))[0]!.annotations.summary!;
  assert.match(summary, /api/);
  assert.match(summary, /1h and 5m windows/);
});

test('a 28d period keeps the budget shares: 13.44x, 5.6x, 2.8x and 0.9333333333x', () => {
  const rates = alerts(rulesOf('{ availability: 99%, window: 28d }'))
    .filter((a) => a.alert === 'SluiceErrorBudgetBurn')
    .map((a) => a.labels.burn_rate);
  assert.deepEqual(rates, ['13.44', '5.6', '2.8', '0.9333333333']);
});

test('SLI ratios over 5m, 30m, 1h, 2h, 6h, 1d, 3d and the period; the budget left', () => {
  const rs = records(rulesOf('{ availability: 99.95% }'));
  assert.deepEqual(
    rs.map((r) => r.record),
    [
      'sluice:slo_objective:ratio',
      ...['5m', '30m', '1h', '2h', '6h', '1d', '3d'].map((w) => `sluice:slo_errors:ratio_rate${w}`),
      'sluice:slo_errors:ratio_period',
      'sluice:slo_error_budget:remaining_ratio',
    ],
  );
  assert.equal(
    rs[1]!.expr,
    '(\n  sum by (route) (rate(sluice_requests_total{route="api",class="5xx"}[5m]))\n  or\n  0 * sum by (route) (rate(sluice_requests_total{route="api"}[5m]))\n)\n/\nsum by (route) (rate(sluice_requests_total{route="api"}[5m]))',
  );
  assert.match(rs[8]!.expr, /\[30d\]/);
  assert.equal(rs[9]!.expr, '1 - sluice:slo_errors:ratio_period{route="api",slo="availability"} / 0.0005');
});

test('a latency objective reads the bucket at its threshold; an integral edge matches `1` and `1.0`', () => {
  const rs = records(rulesOf('{ latency: { p99.9: 200ms, p90: 1s } }'));
  const fiveMinute = rs.filter((r) => r.record === 'sluice:slo_errors:ratio_rate5m');
  assert.deepEqual(
    fiveMinute.map((r) => r.labels?.slo),
    ['latency-p99_9', 'latency-p90'],
  );
  assert.match(fiveMinute[0]!.expr, /sluice_request_duration_seconds_bucket\{route="api",le="0\.2"\}\[5m\]/);
  assert.match(fiveMinute[1]!.expr, /le=~"1\|1\\\\\.0"/);
  const burn = alerts(rulesOf('{ latency: { p95: 200ms } }')).find(
    (a) => a.alert === 'SluiceErrorBudgetBurn',
  );
  // 14.4 × 5% budget
  assert.match(burn!.expr, /> 0\.72\n/);
});

test('the fleet alerts: 5xx over 5% for 5 minutes always; Redis p95 only with `redis`', () => {
  const without = alerts(rulesOf('{ availability: 99% }')).filter((a) => a.alert !== 'SluiceErrorBudgetBurn');
  assert.deepEqual(
    without.map((a) => [a.alert, a.for]),
    [['SluiceRouteErrorRateHigh', '5m']],
  );
  const withRedis = alerts(rulesOf('{ availability: 99% }', true)).map((a) => a.alert);
  assert.ok(withRedis.includes('SluiceRedisLatencyHigh'));
});

test('deploy/monitoring/sluice-rules.yaml is what `sluice slo rules` gives for the example (run `npm run generate`)', () => {
  const committed = readFileSync(
    new URL('../../../deploy/monitoring/sluice-rules.yaml', import.meta.url),
    'utf8',
  );
  assert.equal(committed, renderMonitoringRules());
});

test('the rate-limit and gRPC alerts only for configs that export their metrics; every alert links its runbook', () => {
  const { config: c } = loadConfigText(config('{ availability: 99% }'), 'conf.yaml', {});
  const names = (input: Parameters<typeof generateRules>[0]) =>
    alerts(generateRules(input)).map((a) => a.alert);
  const objectives = objectivesOf(c.routes);
  assert.ok(!names({ objectives, redis: false }).includes('SluiceRateLimitRejectionsHigh'));
  assert.ok(!names({ objectives, redis: false }).includes('SluiceGrpcFailureRateHigh'));
  const all = alerts(
    generateRules({ objectives, redis: true, rateLimits: true, grpc: true, runbookBase: 'https://x/' }),
  );
  assert.deepEqual(
    [...new Set(all.map((a) => a.alert))],
    [
      'SluiceErrorBudgetBurn',
      'SluiceRouteErrorRateHigh',
      'SluiceRedisLatencyHigh',
      'SluiceRateLimitRejectionsHigh',
      'SluiceGrpcFailureRateHigh',
    ],
  );
  for (const a of all) {
    assert.equal(a.annotations.runbook_url, `https://x/docs/runbooks/${a.alert}.md`);
    assert.match(a.annotations.summary!, /\(fired on the .+ windows?/);
    assert.ok(
      existsSync(new URL(`../../../docs/runbooks/${a.alert}.md`, import.meta.url)),
      `runbook of ${a.alert}`,
    );
  }
});
