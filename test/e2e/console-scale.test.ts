/**
 * The console with a large config and store, in Debian's Chromium: 1000 routes over 100 groups and
 * 300 tenants. The traffic page draws one page of routes (never 1000 rows), a search on the server
 * finds route 987; the stream's tick carries a bounded list of routes, route states and groups; the
 * tenants page draws one page. No timing is asserted (bench/console-paint.mjs measures it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { httpRequest } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

interface PageEl {
  textContent: string | null;
}
declare const document: {
  getElementById(id: string): PageEl | null;
  querySelectorAll(selector: string): { length: number };
};

const CHROMIUM = '/usr/bin/chromium';
const PAGE_WAIT = 30_000;
const ROUTES = 1000;
const GROUPS = 100;
const TENANTS = 300;
/** What the test holds a tick to, whatever the config's size: the server's own bound is 20. */
const TICK_BOUND = 25;
/** One page of the traffic and tenants views, as the views say (50 routes, 25 tenants). */
const ROUTE_PAGE = 50;
const TENANT_PAGE = 25;

describe('the console at scale (1000 routes, 300 tenants) in Chromium', () => {
  let g: TestGateway;
  let up: TestUpstream;
  let browser: Browser;

  before(async () => {
    up = await startUpstream();
    const upstreams: Record<string, unknown> = {};
    for (let i = 1; i <= GROUPS; i++) upstreams[`group-${i}`] = { targets: [{ url: up.url }] };
    const routes = Array.from({ length: ROUTES }, (_, i) => ({
      name: `route-${i + 1}`,
      match: { path: { prefix: `/r/${i + 1}/` } },
      upstream: `group-${(i % GROUPS) + 1}`,
    }));
    g = await startGateway(
      { store: 'memory://', upstreams, routes },
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' } },
    );
    for (let i = 0; i < TENANTS; i += 20)
      await Promise.all(
        Array.from({ length: Math.min(20, TENANTS - i) }, (_, j) =>
          adminCall(g.adminUrl, 'POST', '/admin/v1/tenants', {
            role: 'admin',
            body: { id: `tenant-${i + j + 1}`, name: `Tenant ${i + j + 1}` },
          }),
        ),
      );
    // Traffic on 30 routes: more than a tick carries.
    for (let i = 1; i <= 30; i++) await httpRequest(`${g.url}/r/${i * 31}/x`);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await g?.stop();
    await up?.close();
  });

  async function open(view: string): Promise<Page> {
    const page = await (await browser.newContext({ viewport: { width: 1366, height: 768 } })).newPage();
    await page.addInitScript((t) => {
      (
        globalThis as unknown as { sessionStorage: { setItem(k: string, v: string): void } }
      ).sessionStorage.setItem('sluice.console.token', t);
    }, ROLE_TOKENS.viewer);
    await page.goto(`${g.adminUrl}/console/#${view}`);
    return page;
  }

  test('the traffic page draws one page of routes; a search on the server finds route 987', async () => {
    const page = await open('traffic');
    await page.waitForFunction(
      (n) => (document.getElementById('route-count')?.textContent ?? '').includes(`of ${n}`),
      ROUTES,
      { timeout: PAGE_WAIT },
    );
    const rows = await page.locator('#traffic-table tbody tr[data-route]').count();
    assert.ok(rows > 0 && rows <= ROUTE_PAGE, `${rows} rows`);
    assert.match(
      (await page.textContent('#route-count')) ?? '',
      new RegExp(`^1–${ROUTE_PAGE} of ${ROUTES}$`),
    );
    await page.fill('#route-search', 'route-987');
    await page.waitForFunction(
      () => document.querySelectorAll('#traffic-table tr[data-route="route-987"]').length === 1,
      null,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.equal(await page.locator('#traffic-table tbody tr[data-route]').count(), 1);
    assert.equal(await page.textContent('#traffic-table tr[data-route="route-987"] th'), 'route-987');
    assert.equal(await page.textContent('#traffic-table tr[data-route="route-987"] td'), 'group-87');
    await page.context().close();
  });

  test('a tick carries a bounded list of routes, route states and groups, with the counts', async () => {
    const res = await fetch(`${g.adminUrl}/admin/v1/console/stream?ticks=2`, {
      headers: { authorization: `Bearer ${ROLE_TOKENS.viewer}` },
    });
    const ticks = (await res.text())
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => JSON.parse(l.slice(6)));
    assert.equal(ticks.length, 2);
    for (const t of ticks) {
      assert.ok(t.routes.length <= TICK_BOUND, `${t.routes.length} routes`);
      assert.ok(t.routeStates.length <= TICK_BOUND, `${t.routeStates.length} route states`);
      assert.ok(t.groups.length <= TICK_BOUND, `${t.groups.length} groups`);
      assert.equal(t.routeStateCount, ROUTES);
      assert.equal(t.groupCount, GROUPS);
    }
    // The paged list has every route.
    const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/console/routes?q=route-98&limit=200', {
      role: 'viewer',
    });
    const names = (r.body as { routes: { route: string }[]; total: number }).routes.map((x) => x.route);
    assert.deepEqual(names, ['route-98', ...Array.from({ length: 10 }, (_, i) => `route-${980 + i}`)]);
  });

  test('the tenants page draws one page of the 300 tenants', async () => {
    const page = await open('tenants');
    await page.waitForFunction(
      (n) => (document.getElementById('tenant-count')?.textContent ?? '').includes(`of ${n}`),
      TENANTS,
      { timeout: PAGE_WAIT },
    );
    const rows = await page.locator('#tenants-table tr[data-tenant]').count();
    assert.equal(rows, TENANT_PAGE);
    await page.context().close();
  });
});
