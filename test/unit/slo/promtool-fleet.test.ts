/**
 * The fleet alerts added after the burn-rate ones, run by the real promtool on what `sluice slo
 * rules` prints for a config with a rate-limited route and a gRPC route: rate-limit rejections far
 * above their own baseline (fires on a surge and on first-ever rejections that surge; not on a
 * quiet night's small surge, nor on a busy but steady route), and a gRPC service's failure share
 * (fires for the failing service only; client codes such as NOT_FOUND and 3% INTERNAL do not).
 * Every expected value is worked out by hand in the comments, not taken from the generator.
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
upstreams:
  demo:
    targets:
      - url: http://127.0.0.1:9000
routes:
  - name: limited
    match: { path: { prefix: /l/ } }
    upstream: demo
    rateLimit: [{ name: ip, key: [ip], limit: 100, window: 1s }]
  - name: rpc
    match: { path: { prefix: /shop. } }
    upstream: demo
    grpc: { services: [shop.Cart, shop.Catalog] }
`;

const rateLimited = (route: string) => `
          - exp_labels: { severity: ticket, route: ${route} }
            exp_annotations:
              summary: Route ${route} refuses over 3x its usual rate-limit rejections (fired on the 5m window against the 1d baseline)
              description: Rate limits on route ${route} refuse 5/s over the last 5m, over 3x the mean rate of the day before and over 1/s, for 10 minutes.
              runbook_url: https://example.test/sluice/docs/runbooks/SluiceRateLimitRejectionsHigh.md`;

const limited = (route: string) => `sluice_ratelimit_decisions_total{route="${route}",result="limited"}`;

const tests = `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  # Surge: a day at 6 rejections a minute (0.1/s), then 300 a minute (5/s). At 1470m the 5m rate is
  # 5/s; the baseline (1d ending at 1465m: samples 25m..1465m) is (8640 - 150 + 25 × 300) / 86400
  # = 0.185/s, so 3x is 0.56/s: 5 > 0.56 and 5 > 1. True from 1441m (330 in 5m = 1.1/s), so pending
  # at 1446m and firing from 1451m.
  # Quiet night: 1 a minute, then 30 a minute (0.5/s): 30x the baseline but under 1/s: never.
  # Busy and steady: 120 a minute (2/s) all along: over 1/s but not over 3x its baseline: never.
  - interval: 1m
    input_series:
      - series: '${limited('limited')}'
        values: '0+6x1440 8940+300x29'
      - series: '${limited('quiet')}'
        values: '0+1x1440 1470+30x29'
      - series: '${limited('busy')}'
        values: '0+120x1469'
    alert_rule_test:
      - eval_time: 1446m
        alertname: SluiceRateLimitRejectionsHigh
        exp_alerts: []
      - eval_time: 1470m
        alertname: SluiceRateLimitRejectionsHigh
        exp_alerts:${rateLimited('limited')}

  # First rejections ever, and at once a surge (prom-client exports the series from the first one):
  # no day of history, so the baseline is 0 until the offset window has two samples, then rate()
  # spreads what it has over the whole day (at 25m: 6000 / 86400 = 0.07/s). Firing at 25m.
  - interval: 1m
    input_series:
      - series: '${limited('limited')}'
        values: '0+300x30'
    alert_rule_test:
      - eval_time: 25m
        alertname: SluiceRateLimitRejectionsHigh
        exp_alerts:${rateLimited('limited')}

  # gRPC: shop.Cart answers 10% UNAVAILABLE; shop.Catalog 33% NOT_FOUND (the caller's code, not a
  # failure) and 3% INTERNAL (under 5%). Only Cart fires, once it has held 5 minutes.
  - interval: 1m
    input_series:
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Cart",code="OK"}'
        values: '0+90x30'
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Cart",code="UNAVAILABLE"}'
        values: '0+10x30'
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Catalog",code="OK"}'
        values: '0+97x30'
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Catalog",code="NOT_FOUND"}'
        values: '0+50x30'
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Catalog",code="INTERNAL"}'
        values: '0+3x30'
    alert_rule_test:
      - eval_time: 3m
        alertname: SluiceGrpcFailureRateHigh
        exp_alerts: []
      - eval_time: 10m
        alertname: SluiceGrpcFailureRateHigh
        exp_alerts:
          - exp_labels: { severity: page, route: rpc, service: shop.Cart }
            exp_annotations:
              summary: gRPC service shop.Cart on route rpc fails over 5% of calls for 5 minutes (fired on the 5m window)
              description: The share of shop.Cart calls answered UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS over 5m is 10%.
              runbook_url: https://example.test/sluice/docs/runbooks/SluiceGrpcFailureRateHigh.md

  # Catalog's 3% INTERNAL alone (no other failing service): nothing fires.
  - interval: 1m
    input_series:
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Catalog",code="OK"}'
        values: '0+97x30'
      - series: 'sluice_grpc_responses_total{route="rpc",service="shop.Catalog",code="INTERNAL"}'
        values: '0+3x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: SluiceGrpcFailureRateHigh
        exp_alerts: []
`;

test('rate-limit baseline and gRPC failure alerts pass promtool check rules and promtool test rules', {
  skip,
}, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-fleet-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'sluice.yaml'), config);
  const rules = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'src/cli/main.ts'),
      'slo',
      'rules',
      '--config',
      join(dir, 'sluice.yaml'),
      '--runbook-base',
      'https://example.test/sluice/',
    ],
    { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
  );
  writeFileSync(join(dir, 'rules.yaml'), rules);
  writeFileSync(join(dir, 'tests.yaml'), tests);
  const check = spawnSync('promtool', ['check', 'rules', 'rules.yaml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  // No objectives: the 5xx alert, the rate-limit alert and the gRPC alert.
  assert.match(check.stdout, /SUCCESS: 3 rules found/);
  const run = spawnSync('promtool', ['test', 'rules', 'tests.yaml'], { cwd: dir, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
