/**
 * The operations console in a real browser (Debian's Chromium driven by playwright-core) against a
 * real gateway: real upstreams on loopback (one group with health checks, two versions of a
 * release), the embedded store, bootstrap tokens of every role. Traffic flows from this process
 * through the gateway for the whole file while the page is driven as an operator would: log in with
 * a token, watch the numbers and charts move, see a killed target turn unhealthy, abort the canary
 * and see the gateway send everyone to the stable version, suspend a tenant and see its requests
 * refused; a viewer sees no actions and the API refuses them when called directly.
 *
 * Every wait is on a condition of the page (waitForFunction, locators) or of the gateway
 * (untilPasses, eventually), bounded.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { goToView, PAGE_WAIT, signInWithToken } from '../harness/console-page.js';
import { eventually, httpRequest, untilPasses } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startNode, type TestNode } from '../harness/nodes.js';
import { timings, version } from '../harness/releases.js';
import type { TestUpstream } from '../harness/upstream.js';

// What the page-side callbacks (page.evaluate, waitForFunction) touch in the browser, declared for
// this file only: the project's type-check has no DOM library, and src/ must not get one.
interface PageEl {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageEl | null;
  toDataURL(): string;
}
declare const document: {
  getElementById(id: string): PageEl | null;
  querySelector(selector: string): PageEl | null;
  querySelectorAll(selector: string): { length: number };
  addEventListener(type: string, fn: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};
declare const location: { hash: string };
declare const sessionStorage: { length: number; getItem(key: string): string | null };

const CHROMIUM = '/usr/bin/chromium';

const fastChecks = {
  path: '/health',
  interval: '150ms',
  timeout: '150ms',
  jitter: '20ms',
  healthyThreshold: 2,
  unhealthyThreshold: 3,
};

describe('the operations console in Chromium', () => {
  let g: TestGateway;
  let a: TestNode;
  let b: TestNode;
  let v1: TestUpstream;
  let v2: TestUpstream;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** Console errors and CSP violations of every page: none are expected. */
  const problems: string[] = [];
  let stopTraffic = false;
  let traffic: Promise<void>;
  let sent = 0;

  const call = (method: string, path: string, role: keyof typeof ROLE_TOKENS, body?: unknown) =>
    adminCall(g.adminUrl, method, path, { role, body });

  before(async () => {
    assert.ok(
      existsSync(CHROMIUM),
      `${CHROMIUM} is missing: run scripts/install-test-deps.sh (Debian's chromium)`,
    );
    [a, b, v1, v2] = await Promise.all([startNode('a'), startNode('b'), version('v1'), version('v2')]);
    g = await startGateway(
      {
        store: 'memory://',
        upstreams: {
          web: { targets: [{ url: a.origin }, { url: b.origin }], healthCheck: fastChecks },
          v1: { targets: [{ url: v1.url }] },
          v2: { targets: [{ url: v2.url }] },
        },
        routes: [
          { name: 'web', match: { path: { prefix: '/web' } }, upstream: 'web' },
          { name: 'keyed', match: { path: { prefix: '/keyed' } }, upstream: 'web', auth: { apiKey: true } },
          { name: 'api', match: { path: { prefix: '/api' } }, upstream: 'v1' },
        ],
        releases: {
          api: {
            route: 'api',
            candidate: 'v2',
            sticky: { by: ['header:x-user'] },
            // Half the keys on the candidate, for longer than the test: only the console moves it.
            steps: [{ weight: 50, duration: '1h' }],
            analysis: { interval: '200ms', minSamples: 30, inconclusiveLimit: 100_000 },
          },
        },
      },
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' }, releaseTimings: timings },
    );
    // Test traffic for the whole file: two senders, one on each proxied route.
    let n = 0;
    const sender = async (path: string) => {
      while (!stopTraffic) {
        await httpRequest(`${g.url}${path}`, { headers: { 'x-user': `u${n++ % 500}` } }).catch(() => {});
        sent++;
      }
    };
    traffic = Promise.all([sender('/web/x'), sender('/api/x')]).then(() => {});
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    stopTraffic = true;
    await traffic;
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await g?.stop();
    await Promise.all([a?.kill(), b?.kill(), v1?.close(), v2?.close()].filter(Boolean));
  });

  /** A fresh browser context (its own sessionStorage), logged in with the token of `role`. */
  async function login(role: keyof typeof ROLE_TOKENS): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`${role} console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`${role} page error: ${e.message}`));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    return signInWithToken(page, g.adminUrl, ROLE_TOKENS[role], `${role}-user`);
  }

  const go = goToView;

  test('the console is served under /console/ with a Content-Security-Policy of its own origin only', async () => {
    const r = await fetch(`${g.adminUrl}/console`, { redirect: 'manual' });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), '/console/');
    const index = await fetch(`${g.adminUrl}/console/`);
    assert.equal(index.status, 200);
    const csp = index.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
    const html = await index.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/, 'no inline script');
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin');
    const uplot = await fetch(`${g.adminUrl}/console/vendor/uPlot.esm.js`);
    assert.equal(uplot.status, 200);
    assert.match(uplot.headers.get('content-type') ?? '', /javascript/);
    // Paths outside the set of files are not found, whatever they try.
    for (const p of [
      '/console/../package.json',
      '/console/%2e%2e/package.json',
      '/console/js/../../package.json',
    ])
      assert.equal((await fetch(`${g.adminUrl}${p}`)).status, 404, p);
  });

  test('a wrong token is refused on the login page and not kept', async () => {
    const context = await browser.newContext();
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${g.adminUrl}/console/`);
    await page.fill('#token', 'not-a-token-of-this-gateway');
    await page.press('#token', 'Enter');
    await page.waitForFunction(
      () => /not accepted/.test(document.getElementById('login-error')?.textContent ?? ''),
      null,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await page.locator('#app').isHidden(), true);
  });

  test('logged in with a token: live numbers and the charts move while traffic flows', async () => {
    const page = await login('admin');
    // The token is in this tab's sessionStorage, never in the address.
    assert.equal(
      await page.evaluate(() => sessionStorage.getItem('sluice.console.token')),
      ROLE_TOKENS.admin,
    );
    assert.ok(!page.url().includes(ROLE_TOKENS.admin));
    await page.waitForFunction(() => document.getElementById('live')?.dataset.state === 'live', null, {
      timeout: PAGE_WAIT,
    });
    // Traffic on the web route shows as a rate above zero and a p95 in milliseconds.
    const row = (field: string) => `tr[data-route="web"][data-upstream="web"] td[data-field="${field}"]`;
    await page.waitForFunction(
      (sel) => Number.parseFloat(document.querySelector(sel)?.textContent ?? '') > 0,
      row('rps'),
      {
        timeout: PAGE_WAIT,
      },
    );
    await page.waitForFunction(
      (sel) => /ms$/.test(document.querySelector(sel)?.textContent ?? ''),
      row('p95'),
      {
        timeout: PAGE_WAIT,
      },
    );
    await page.waitForFunction(
      () => Number.parseFloat(document.getElementById('total-rps')?.textContent ?? '') > 0,
    );
    // The charts move: more points, and a different picture, a few ticks later.
    const chart = async (id: string) =>
      page.evaluate((sel) => {
        const box = document.getElementById(sel)!;
        return {
          points: Number(box.dataset.points ?? 0),
          pixels: box.querySelector('canvas')?.toDataURL() ?? '',
        };
      }, id);
    for (const id of ['chart-rate', 'chart-p95']) {
      const before = await chart(id);
      await page.waitForFunction(
        ([sel, n, pixels]) => {
          const box = document.getElementById(sel as string)!;
          return (
            Number(box.dataset.points) >= (n as number) + 2 &&
            box.querySelector('canvas')?.toDataURL() !== pixels
          );
        },
        [id, before.points, before.pixels] as const,
        { timeout: PAGE_WAIT },
      );
    }
    const updated = await page.textContent('#traffic-updated');
    await page.waitForFunction(
      (t) => document.getElementById('traffic-updated')?.textContent !== t,
      updated,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.ok(sent > 0);
  });

  test('a target killed during the test turns unhealthy on the page; the other stays up', async () => {
    const page = await login('operator');
    await go(page, 'upstreams');
    const state = (n: TestNode) => `tr[data-target="${n.origin}"]`;
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-state') === 'up',
      state(b),
      {
        timeout: PAGE_WAIT,
      },
    );
    await b.kill();
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-state') === 'down',
      state(b),
      {
        timeout: PAGE_WAIT,
      },
    );
    // Said in words, not only in colour.
    assert.match((await page.textContent(`${state(b)} [data-field="state"]`)) ?? '', /down/);
    assert.equal(await page.getAttribute(state(a), 'data-state'), 'up');
    assert.match((await page.textContent('section[data-upstream="web"] h3')) ?? '', /1 of 2 available/);
  });

  test('a canary aborted from the console: the release is aborted and the gateway sends every key to the stable version', async () => {
    const versions = async (prefix: string) => {
      const seen = new Set<string>();
      for (let i = 0; i < 60; i++)
        seen.add(
          String(
            (await httpRequest(`${g.url}/api/x`, { headers: { 'x-user': `${prefix}${i}` } })).headers[
              'x-version'
            ],
          ),
        );
      return [...seen].sort();
    };
    // The canary is live: half the keys reach v2.
    await untilPasses(async () => assert.deepEqual(await versions('before'), ['v1', 'v2']), PAGE_WAIT);
    const page = await login('operator');
    await go(page, 'releases');
    const card = 'article[data-release="api"]';
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-state') === 'running',
      card,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.match((await page.textContent(`${card} [data-field="weight"]`)) ?? '', /50% on v2/);
    page.once('dialog', (d) => void d.accept());
    // Keyboard: focus the button and press Enter, as an operator without a mouse would.
    await page.focus(`${card} button[data-action="abort"]`);
    await page.keyboard.press('Enter');
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-state') === 'aborted',
      card,
      {
        timeout: PAGE_WAIT,
      },
    );
    await page.waitForFunction(
      (sel) => document.querySelector(`${sel} .timeline li[data-action="abort"]`) !== null,
      card,
      {
        timeout: PAGE_WAIT,
      },
    );
    // The gateway follows: every key on v1.
    await untilPasses(async () => assert.deepEqual(await versions('after'), ['v1']), PAGE_WAIT);
    // Recorded as the operator's act, with the console's reason.
    const h = await call('GET', '/admin/v1/releases/api/history?limit=5', 'viewer');
    const abort = (h.body as { events: { action: string; actor: string; reason: string }[] }).events.find(
      (e) => e.action === 'abort',
    );
    assert.ok(abort, h.text);
    assert.match(abort.actor, /operator-user/);
    assert.match(abort.reason, /console/);
  });

  test('a viewer sees no action buttons, and the API refuses the actions when called with the viewer token', async () => {
    await call('POST', '/admin/v1/tenants', 'admin', { id: 'viewed', name: 'Viewed' });
    const page = await login('viewer');
    await go(page, 'releases');
    await page.locator('article[data-release="api"]').waitFor({ timeout: PAGE_WAIT });
    assert.equal(await page.locator('button[data-action]').count(), 0, 'no release actions');
    await go(page, 'tenants');
    await page.locator('tr[data-tenant="viewed"]').waitFor({ timeout: PAGE_WAIT });
    assert.equal(await page.locator('#tenants-table button[data-action]').count(), 0, 'no suspend or resume');
    // Reading keys is allowed: the button is there.
    assert.equal(await page.locator('tr[data-tenant="viewed"] button[data-keys]').count(), 1);
    // The server is the check, not the hidden button: the same calls with the viewer's token.
    const viewerToken = await page.evaluate(() => sessionStorage.getItem('sluice.console.token'));
    for (const path of [
      '/admin/v1/releases/api/start',
      '/admin/v1/releases/api/abort',
      '/admin/v1/tenants/viewed/suspend',
    ]) {
      const r = await adminCall(g.adminUrl, 'POST', path, { token: viewerToken ?? '', body: {} });
      assert.equal(r.status, 403, `${path}: ${r.text}`);
      assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-003');
    }
    assert.equal(
      ((await call('GET', '/admin/v1/tenants/viewed', 'admin')).body as { status: string }).status,
      'active',
    );
  });

  test('a tenant suspended from the page (search, then Suspend) gets its requests refused', async () => {
    // Enough tenants for more than one page: the list is paged and searched, never drawn whole.
    for (let i = 0; i < 30; i++)
      await call('POST', '/admin/v1/tenants', 'admin', {
        id: `t${String(i).padStart(2, '0')}`,
        name: `Tenant ${i}`,
      });
    assert.equal(
      (await call('POST', '/admin/v1/tenants', 'admin', { id: 'acme', name: 'Acme' })).status,
      201,
    );
    const created = await call('POST', '/admin/v1/tenants/acme/keys', 'admin', { name: 'ci' });
    const secret = (created.body as { secret: string }).secret;
    const keyed = async () => {
      const r = await httpRequest(`${g.url}/keyed/x`, { headers: { 'x-api-key': secret } });
      return r.status === 200 ? '200' : `${r.status} ${JSON.parse(r.text).code}`;
    };
    await eventually(async () => (await keyed()) === '200', 'the key works', PAGE_WAIT);

    const page = await login('security');
    await go(page, 'tenants');
    await page.waitForFunction(
      () => /of 3\d/.test(document.getElementById('tenant-count')?.textContent ?? ''),
      null,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.ok((await page.locator('#tenants-table tr[data-tenant]').count()) <= 25, 'one page at a time');
    await page.fill('#tenant-search', 'acme');
    const row = 'tr[data-tenant="acme"]';
    await page.waitForFunction(
      () => document.querySelectorAll('#tenants-table tr[data-tenant]').length === 1,
    );
    await page.click(`${row} button[data-action="suspend"]`);
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-status') === 'suspended',
      row,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.match((await page.textContent(`${row} [data-field="status"]`)) ?? '', /suspended/);
    await eventually(
      async () => (await keyed()) === '403 SLUICE-TENANT-002',
      'the suspended tenant is refused',
      PAGE_WAIT,
    );
    // And resumed from the page: served again.
    await page.click(`${row} button[data-action="resume"]`);
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-status') === 'active',
      row,
      {
        timeout: PAGE_WAIT,
      },
    );
    await eventually(async () => (await keyed()) === '200', 'the resumed tenant is served', PAGE_WAIT);
    const log = await call('GET', '/admin/v1/changes?limit=50', 'admin');
    assert.match(log.text, /security-user/);
  });

  test('no page logged an error or a Content-Security-Policy violation', () => {
    // The wrong-token page logs the refused call (401) as a resource error: that one is expected.
    const unexpected = problems.filter((p) => !/401 \(Unauthorized\)/.test(p));
    assert.deepEqual(unexpected, []);
  });
});
