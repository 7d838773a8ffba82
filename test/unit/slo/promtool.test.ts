/**
 * The rules `sluice slo rules` prints, run by the real promtool (Debian's `prometheus` package,
 * installed by scripts/install-test-deps.sh): `promtool check rules`, then `promtool test rules`
 * with synthetic series that should fire (fast burn, slow burn, slow latency, slow Redis) and should
 * not (steady within budget, after the errors stop). Every expected alert, label, annotation and
 * value below is written by hand from the SRE workbook's arithmetic, not taken from the generator.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const promtool = spawnSync('promtool', ['--version']).status === 0;
const skip =
  promtool || process.env.CI
    ? false
    : 'promtool not installed (Debian: apt-get install -y --no-install-recommends prometheus; scripts/install-test-deps.sh does it)';

const root = fileURLToPath(new URL('../../../', import.meta.url));

const config = `listen: { host: 127.0.0.1, port: 8080 }
redis: { url: "redis://127.0.0.1:6379" }
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - name: api
    match: { path: { prefix: /api/ } }
    upstream: demo
    slo: { availability: 99.95%, window: 30d }
  - name: slow
    match: { path: { prefix: /slow/ } }
    upstream: demo
    slo: { latency: { p95: 200ms } }
`;

/** The annotations of a burn alert, with the figures given by hand. */
function burn(
  route: string,
  slo: string,
  objective: string,
  budget: string,
  rate: string,
  long: string,
  short: string,
  value: string,
  threshold: string,
  share: string,
) {
  return {
    summary: `Route ${route} burns its ${slo} error budget at over ${rate}x (fired on the ${long} and ${short} windows)`,
    description: `Objective: ${objective} over 30d, a budget of ${budget} bad events. The bad-event ratio is ${value} over ${long} and above ${threshold} over ${short} too: at ${rate}x, ${share} of the 30d budget goes in ${long}.`,
    runbook_url: 'docs/runbooks/SluiceErrorBudgetBurn.md',
  };
}

const avail = 'availability 99.95% (non-5xx answers)';
const lat = 'latency: 95% of requests within 200ms';

const apiAlert = (
  sev: string,
  long: string,
  short: string,
  rate: string,
  value: string,
  thr: string,
  share: string,
) => `
          - exp_labels: { severity: ${sev}, route: api, slo: availability, long_window: ${long}, short_window: ${short}, burn_rate: "${rate}" }
            exp_annotations: ${JSON.stringify(burn('api', 'availability', avail, '0.05%', rate, long, short, value, thr, share))}`;

const slowAlert = (sev: string, long: string, short: string, rate: string, thr: string, share: string) => `
          - exp_labels: { severity: ${sev}, route: slow, slo: latency-p95, long_window: ${long}, short_window: ${short}, burn_rate: "${rate}" }
            exp_annotations: ${JSON.stringify(burn('slow', 'latency-p95', lat, '5%', rate, long, short, '80%', thr, share))}`;

const tests = `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  # Fast burn: 10% of api's requests fail (200x the 0.05% budget). Every window pair fires, each
  # as its own alert naming its windows; the 5%-for-5m alert fires once it has held 5 minutes.
  - interval: 1m
    input_series:
      - series: 'sluice_requests_total{route="api",upstream="demo",class="2xx"}'
        values: '0+90x120'
      - series: 'sluice_requests_total{route="api",upstream="demo",class="5xx"}'
        values: '0+10x120'
    alert_rule_test:
      - eval_time: 10m
        alertname: SluiceErrorBudgetBurn
        exp_alerts:${apiAlert('page', '1h', '5m', '14.4', '10%', '0.72%', '2%')}${apiAlert('page', '6h', '30m', '6', '10%', '0.3%', '5%')}${apiAlert('ticket', '1d', '2h', '3', '10%', '0.15%', '10%')}${apiAlert('ticket', '3d', '6h', '1', '10%', '0.05%', '10%')}
      - eval_time: 3m
        alertname: SluiceRouteErrorRateHigh
        exp_alerts: []
      - eval_time: 10m
        alertname: SluiceRouteErrorRateHigh
        exp_alerts:
          - exp_labels: { severity: page, route: api }
            exp_annotations:
              summary: Route api answers over 5% 5xx for 5 minutes
              description: The 5xx share on route api over 5m is 10%.
              runbook_url: docs/runbooks/SluiceRouteErrorRateHigh.md
    promql_expr_test:
      - expr: sluice:slo_errors:ratio_rate5m
        eval_time: 10m
        exp_samples:
          - labels: 'sluice:slo_errors:ratio_rate5m{route="api",slo="availability"}'
            value: 0.1

  # Slow burn: 0.1% fail, 2x the budget: only the 3d/6h ticket (1x) fires; 3x, 6x, 14.4x do not.
  - interval: 1m
    input_series:
      - series: 'sluice_requests_total{route="api",upstream="demo",class="2xx"}'
        values: '0+999x420'
      - series: 'sluice_requests_total{route="api",upstream="demo",class="5xx"}'
        values: '0+1x420'
    alert_rule_test:
      - eval_time: 400m
        alertname: SluiceErrorBudgetBurn
        exp_alerts:${apiAlert('ticket', '3d', '6h', '1', '0.1%', '0.05%', '10%')}
      - eval_time: 400m
        alertname: SluiceRouteErrorRateHigh
        exp_alerts: []

  # Steady within budget: 0.02% fail (0.4x). Nothing fires; 60% of the budget is left.
  - interval: 1m
    input_series:
      - series: 'sluice_requests_total{route="api",upstream="demo",class="2xx"}'
        values: '0+4999x420'
      - series: 'sluice_requests_total{route="api",upstream="demo",class="5xx"}'
        values: '0+1x420'
    alert_rule_test:
      - eval_time: 400m
        alertname: SluiceErrorBudgetBurn
        exp_alerts: []
      - eval_time: 400m
        alertname: SluiceRouteErrorRateHigh
        exp_alerts: []
    promql_expr_test:
      - expr: round(sluice:slo_error_budget:remaining_ratio, 0.001)
        eval_time: 400m
        exp_samples:
          - labels: '{route="api",slo="availability",window="30d"}'
            value: 0.6

  # No 5xx ever (prom-client exports no 5xx series then): 0 errors and a full budget, not nothing.
  - interval: 1m
    input_series:
      - series: 'sluice_requests_total{route="api",upstream="demo",class="2xx"}'
        values: '0+100x60'
    promql_expr_test:
      - expr: sluice:slo_errors:ratio_rate5m
        eval_time: 60m
        exp_samples:
          - labels: 'sluice:slo_errors:ratio_rate5m{route="api",slo="availability"}'
            value: 0
      - expr: sluice:slo_error_budget:remaining_ratio
        eval_time: 60m
        exp_samples:
          - labels: 'sluice:slo_error_budget:remaining_ratio{route="api",slo="availability",window="30d"}'
            value: 1

  # The errors stop after 30 minutes: at 60m the 5m and 30m windows are clean, so both pages have
  # reset although the 1h and 6h ratios are still high; the tickets (2h and 6h short windows) still fire.
  - interval: 1m
    input_series:
      - series: 'sluice_requests_total{route="api",upstream="demo",class="2xx"}'
        values: '0+90x30 2800+100x29'
      - series: 'sluice_requests_total{route="api",upstream="demo",class="5xx"}'
        values: '0+10x30 300+0x29'
    alert_rule_test:
      - eval_time: 60m
        alertname: SluiceErrorBudgetBurn
        exp_alerts:${apiAlert('ticket', '1d', '2h', '3', '5%', '0.15%', '10%')}${apiAlert('ticket', '3d', '6h', '1', '5%', '0.05%', '10%')}

  # Latency: 80% of slow's requests take over 200ms against p95 (a 5% budget): 16x, every pair fires.
  # 3% slow requests (0.6x) fire nothing.
  - interval: 1m
    input_series:
      - series: 'sluice_request_duration_seconds_bucket{route="slow",upstream="demo",le="0.2"}'
        values: '0+20x120'
      - series: 'sluice_request_duration_seconds_bucket{route="slow",upstream="demo",le="+Inf"}'
        values: '0+100x120'
      - series: 'sluice_request_duration_seconds_count{route="slow",upstream="demo"}'
        values: '0+100x120'
    alert_rule_test:
      - eval_time: 10m
        alertname: SluiceErrorBudgetBurn
        exp_alerts:${slowAlert('page', '1h', '5m', '14.4', '72%', '2%')}${slowAlert('page', '6h', '30m', '6', '30%', '5%')}${slowAlert('ticket', '1d', '2h', '3', '15%', '10%')}${slowAlert('ticket', '3d', '6h', '1', '5%', '10%')}
  - interval: 1m
    input_series:
      - series: 'sluice_request_duration_seconds_bucket{route="slow",upstream="demo",le="0.2"}'
        values: '0+97x420'
      - series: 'sluice_request_duration_seconds_bucket{route="slow",upstream="demo",le="+Inf"}'
        values: '0+100x420'
      - series: 'sluice_request_duration_seconds_count{route="slow",upstream="demo"}'
        values: '0+100x420'
    alert_rule_test:
      - eval_time: 400m
        alertname: SluiceErrorBudgetBurn
        exp_alerts: []

  # Redis: on replica a, 90% of commands take 50-100ms (p95 about 97ms); on b all are under 25ms.
  - interval: 1m
    input_series:
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="a",result="ok",le="0.05"}'
        values: '0+10x20'
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="a",result="ok",le="0.1"}'
        values: '0+100x20'
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="a",result="ok",le="+Inf"}'
        values: '0+100x20'
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="b",result="ok",le="0.025"}'
        values: '0+100x20'
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="b",result="ok",le="0.05"}'
        values: '0+100x20'
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="b",result="ok",le="0.1"}'
        values: '0+100x20'
      - series: 'sluice_redis_command_duration_seconds_bucket{instance="b",result="ok",le="+Inf"}'
        values: '0+100x20'
    alert_rule_test:
      - eval_time: 3m
        alertname: SluiceRedisLatencyHigh
        exp_alerts: []
      - eval_time: 15m
        alertname: SluiceRedisLatencyHigh
        exp_alerts:
          - exp_labels: { severity: ticket, instance: a }
            exp_annotations:
              summary: Redis p95 over 50ms on a for 5 minutes
              description: p95 of the Redis commands of the limit, quota and cache policies is 97.22ms on a.
              runbook_url: docs/runbooks/SluiceRedisLatencyHigh.md
`;

test('the generated rules pass promtool check rules and promtool test rules', { skip }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-slo-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'sluice.yaml'), config);
  // The real command, as an operator runs it.
  const rules = execFileSync(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'slo', 'rules', '--config', join(dir, 'sluice.yaml')],
    { cwd: root, encoding: 'utf8' },
  );
  writeFileSync(join(dir, 'rules.yaml'), rules);
  writeFileSync(join(dir, 'tests.yaml'), tests);
  const check = spawnSync('promtool', ['check', 'rules', 'rules.yaml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  // 2 objectives × (1 objective + 7 windows + period + budget + 4 alerts) + 2 fleet alerts
  assert.match(check.stdout, /SUCCESS: 30 rules found/);
  const run = spawnSync('promtool', ['test', 'rules', 'tests.yaml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});

test('the committed deploy/monitoring files pass promtool', { skip }, () => {
  const dir = join(root, 'deploy/monitoring');
  const check = spawnSync('promtool', ['check', 'config', 'prometheus.yml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  assert.match(check.stdout, /SUCCESS: \d+ rules found/);
});
