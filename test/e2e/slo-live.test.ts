/**
 * Sluice's own SLO figures through a whole gateway on real sockets: a route with
 * `slo: { availability: 99%, latency: { p99: 5s } }` gets 200 requests from a real upstream, 10 of
 * them answered 500, and GET /metrics shows the SLI, budget left and burn rates worked out by hand.
 * The SLO timer's tick is called directly (it is also on its 10 s timer), so no wait is on time.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { sloKey } from '../../src/slo/live.js';
import { httpRequest, untilPasses } from '../harness/flow.js';
import { startGateway } from '../harness/gateway.js';
import { scrape } from '../harness/metrics.js';
import { startUpstream } from '../harness/upstream.js';

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c().catch(() => {});
});

/** Every series of `name` as label map → value, whatever the label order. */
function series(text: string, name: string): { labels: Record<string, string>; value: number }[] {
  const out: { labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const labels: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, close).matchAll(/([a-z_]+)="([^"]*)"/g))
      labels[m[1]!] = m[2]!;
    out.push({ labels, value: Number(line.slice(close + 2)) });
  }
  return out;
}

function gauge(text: string, name: string, labels: Record<string, string>): number | undefined {
  return series(text, name).find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

test('200 requests, 10 answered 500, on a 99% route: SLI 0.95, burn rate 5 on every window, budget −4', async () => {
  const up = await startUpstream((req, res) => {
    res.statusCode = req.url?.startsWith('/api/bad') ? 500 : 200;
    res.end('x');
  });
  closers.push(up.close);
  const g = await startGateway({
    store: 'memory://',
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [
      {
        name: 'api',
        match: { path: { prefix: '/api/' } },
        upstream: 'up',
        slo: { availability: '99%', latency: { p99: '5s' } },
      },
      { name: 'plain', match: { path: { prefix: '/plain/' } }, upstream: 'up' },
    ],
  });
  closers.push(() => g.stop());

  for (let i = 0; i < 200; i++) {
    const r = await httpRequest(`${g.url}/api/${i % 20 === 0 ? 'bad' : 'ok'}/${i}`);
    assert.equal(r.status, i % 20 === 0 ? 500 : 200);
  }
  await httpRequest(`${g.url}/plain/x`);

  const svc = g.gw.lifetimeValue(sloKey)!;
  assert.ok(svc, 'the gateway made its SLO figures');
  const route = { route: 'api', version: '' };
  const text = await untilPasses(async () => {
    svc.tick();
    const t = await scrape(g.adminUrl);
    // 10 of 200 bad = 5%; the budget of 99% is 1%: 5x, on every window (all traffic is recent).
    for (const window of ['5m', '30m', '1h', '2h', '6h', '1d', '3d'])
      assert.equal(gauge(t, 'sluice_slo_burn_rate', { ...route, slo: 'availability', window }), 5, window);
    return t;
  }, 10_000);
  // Over the 30d period so far: SLI 190/200 = 0.95; budget left 1 − 5 = −4.
  assert.equal(gauge(text, 'sluice_slo_sli', { ...route, slo: 'availability', window: '30d' }), 0.95);
  assert.equal(
    gauge(text, 'sluice_slo_error_budget_remaining', { ...route, slo: 'availability', window: '30d' }),
    -4,
  );
  // Latency p99 ≤ 5 s: none of the 200 loopback answers took 5 s: SLI 1, burn 0, budget whole.
  assert.equal(gauge(text, 'sluice_slo_sli', { ...route, slo: 'latency-p99' }), 1);
  assert.equal(gauge(text, 'sluice_slo_burn_rate', { ...route, slo: 'latency-p99', window: '5m' }), 0);
  assert.equal(gauge(text, 'sluice_slo_error_budget_remaining', { ...route, slo: 'latency-p99' }), 1);
  // A route without an slo has no series; an unreleased route has no per-version series.
  assert.deepEqual(
    series(text, 'sluice_slo_burn_rate').filter((s) => s.labels.route !== 'api' || s.labels.version !== ''),
    [],
  );
});
