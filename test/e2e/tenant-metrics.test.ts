/**
 * Per-tenant series (`metrics.tenants`) through a real gateway with the embedded store: allow-listed
 * tenants attributed by their host or their API key get sluice_tenant_* series; a tenant not on the
 * list, an unknown tenant, and tenant names in request headers never become a label value; a reload
 * that takes a tenant off the list removes its series; a list longer than `max` is a config error.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { configErrors } from '../harness/config-errors.js';
import { httpRequest, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { metric, scrape } from '../harness/metrics.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };

function config(upUrl: string, allow: string[]) {
  return {
    store: 'memory://',
    identity: { hostTenant: '{tenant}.api.test' },
    metrics: { tenants: { allow, max: 3 } },
    upstreams: { up: { targets: [{ url: upUrl }] } },
    routes: [
      { name: 'hosted', match: { path: { prefix: '/h' } }, upstream: 'up', tenant: { from: ['host'] } },
      { name: 'keyed', match: { path: { prefix: '/k' } }, upstream: 'up', auth: { apiKey: true } },
      { name: 'open', match: { path: { prefix: '/o' } }, upstream: 'up' },
    ],
  };
}

/** Every value the `tenant` label takes in the exposition. */
function tenantLabels(text: string): Set<string> {
  return new Set([...text.matchAll(/[{,]tenant="([^"]*)"/g)].map((m) => m[1]!));
}

const requests = (tenant: string, route: string, cls = '2xx') =>
  `sluice_tenant_requests_total{tenant="${tenant}",route="${route}",class="${cls}"}`;
const durationCount = (tenant: string, route: string) =>
  `sluice_tenant_request_duration_seconds_count{tenant="${tenant}",route="${route}"}`;

describe('per-tenant series for an allow-list', () => {
  let up: TestUpstream;
  let g: TestGateway;
  let keyT2 = '';
  let keyOther = '';

  before(async () => {
    up = await startUpstream();
    // `t3` is allow-listed but not a tenant: a host naming it is refused, and counts nowhere.
    g = await startGateway(config(up.url, ['t1', 't2', 't3']));
    const repo = g.gw.tenancy!;
    for (const id of ['t1', 't2', 'other']) await repo.createTenant(who, { id, name: id });
    keyT2 = (await repo.createKey(who, 't2', { name: 'k' })).plaintext;
    keyOther = (await repo.createKey(who, 'other', { name: 'k' })).plaintext;
    await waitFor(
      () =>
        g.gw.identity!.snapshot.current.keysById.size === 2 &&
        g.gw.identity!.snapshot.current.tenantsById.size === 3,
      'tenants and keys in the snapshot',
      15_000,
    );
  });
  after(async () => {
    await g?.stop();
    await up?.close();
  });

  test('allow-listed tenants, by host and by API key: their own series, by route and class', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await httpRequest(`${g.url}/h/x`, { headers: { host: 't1.api.test' } });
      assert.equal(r.status, 200);
    }
    for (let i = 0; i < 2; i++) {
      const r = await httpRequest(`${g.url}/k/x`, { headers: { 'x-api-key': keyT2 } });
      assert.equal(r.status, 200);
    }
    const text = await scrape(g.adminUrl);
    assert.equal(metric(text, requests('t1', 'hosted')), 3);
    assert.equal(metric(text, durationCount('t1', 'hosted')), 3);
    assert.equal(metric(text, requests('t2', 'keyed')), 2);
    assert.equal(metric(text, durationCount('t2', 'keyed')), 2);
    assert.deepEqual([...tenantLabels(text)].sort(), ['t1', 't2']);
  });

  test('a tenant not on the list, and an unknown tenant, produce no series', async () => {
    const byHost = await httpRequest(`${g.url}/h/x`, { headers: { host: 'other.api.test' } });
    assert.equal(byHost.status, 200);
    const byKey = await httpRequest(`${g.url}/k/x`, { headers: { 'x-api-key': keyOther } });
    assert.equal(byKey.status, 200);
    const unknown = await httpRequest(`${g.url}/h/x`, { headers: { host: 't3.api.test' } });
    assert.equal(unknown.status, 403, 'the allow-listed t3 is not a tenant: refused');
    const text = await scrape(g.adminUrl);
    assert.deepEqual([...tenantLabels(text)].sort(), ['t1', 't2']);
    // Counted in the route metrics all the same.
    assert.equal(metric(text, 'sluice_requests_total{route="hosted",upstream="up",class="2xx"}'), 4);
  });

  test('a tenant named in request headers is never a label value', async () => {
    const forged = { 'x-sluice-tenant': 't1', 'x-tenant-id': 't1', 'x-sluice-principal': 't1' };
    // Tenant `other` by its key, claiming t1 in headers: counted for nobody.
    const a = await httpRequest(`${g.url}/k/x`, { headers: { 'x-api-key': keyOther, ...forged } });
    assert.equal(a.status, 200);
    // A route without auth: the headers are dropped, no tenant at all.
    const b = await httpRequest(`${g.url}/o/x`, { headers: { ...forged, 'x-sluice-tenant': 't2' } });
    assert.equal(b.status, 200);
    // Not a tenant host: refused, whatever the headers say.
    const c = await httpRequest(`${g.url}/h/x`, { headers: { host: 'nobody.example', ...forged } });
    assert.equal(c.status, 403);
    // A header naming a tenant that is not allow-listed, and not a tenant at all.
    const d = await httpRequest(`${g.url}/o/x`, { headers: { 'x-sluice-tenant': 'attacker-1' } });
    assert.equal(d.status, 200);
    const text = await scrape(g.adminUrl);
    assert.equal(metric(text, requests('t1', 'hosted')), 3);
    assert.equal(metric(text, requests('t1', 'keyed')), undefined);
    assert.equal(metric(text, requests('t2', 'keyed')), 2);
    assert.ok(
      !/route="open"[^}]*\} /.test(
        text
          .split('\n')
          .filter((l) => l.startsWith('sluice_tenant_'))
          .join('\n'),
      ),
      'no tenant series for the route without auth',
    );
    assert.deepEqual([...tenantLabels(text)].sort(), ['t1', 't2']);
  });

  test('a reload that takes a tenant off the list removes its series', async () => {
    g.write(config(up.url, ['t2']));
    const r = g.gw.reload('test');
    assert.notEqual(r.result, 'rejected', JSON.stringify(r));
    const r2 = await httpRequest(`${g.url}/h/x`, { headers: { host: 't1.api.test' } });
    assert.equal(r2.status, 200);
    const text = await scrape(g.adminUrl);
    assert.deepEqual([...tenantLabels(text)], ['t2']);
    assert.equal(metric(text, requests('t2', 'keyed')), 2, 'the series kept are not reset');
  });
});

describe('the cap', () => {
  const base = `
listen: { host: 127.0.0.1, port: 0 }
upstreams: { up: { targets: [{ url: "http://127.0.0.1:1" }] } }
routes: [{ name: r, match: { path: { prefix: / } }, upstream: up }]
`;
  test('more allow-listed tenants than max: a config error at metrics.tenants.allow', () => {
    const errs = configErrors(`${base}metrics: { tenants: { allow: [a, b, c], max: 2 } }\n`);
    assert.equal(errs.length, 1, JSON.stringify(errs));
    assert.equal(errs[0]!.path, '/metrics/tenants/allow');
    assert.match(errs[0]!.message, /3 tenants listed, more than metrics\.tenants\.max \(2\)/);
  });

  test('without max, 50 at most', () => {
    const ids = Array.from({ length: 51 }, (_, i) => `t${i}`);
    const errs = configErrors(`${base}metrics: { tenants: { allow: [${ids.join(', ')}] } }\n`);
    assert.equal(errs[0]!.path, '/metrics/tenants/allow');
    assert.match(errs[0]!.message, /51 tenants listed, more than metrics\.tenants\.max \(50\)/);
  });

  test('max itself is capped at 500, and tenant ids are checked', () => {
    const errs = configErrors(`${base}metrics: { tenants: { allow: [a], max: 501 } }\n`);
    assert.equal(errs[0]!.path, '/metrics/tenants/max');
    const bad = configErrors(`${base}metrics: { tenants: { allow: ["Not A Tenant"] } }\n`);
    assert.equal(bad[0]!.path, '/metrics/tenants/allow/0');
  });
});
