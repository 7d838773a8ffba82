/**
 * The console's login through the issuer of admin.auth, in a real browser (Debian's Chromium via
 * playwright-core) against a real provider (oidc-provider, test/harness/oidc-login.ts): the page
 * sends the browser to the provider's own login and consent pages, comes back with a code, exchanges
 * it (PKCE) at the provider's token endpoint and calls the admin API with the access token, which
 * the gateway verifies as any admin.auth token (audience, roles from `sluice_roles`).
 *
 * Every wait is on a condition of the page (waitForFunction, locators, waitForURL), bounded.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { adminCall, roleTokensEnv } from '../harness/admin.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import {
  ADMIN_RESOURCE,
  CONSOLE_CLIENT_ID,
  type LoginProvider,
  startLoginProvider,
} from '../harness/oidc-login.js';

// The browser side of page.evaluate / waitForFunction, declared here (no DOM lib in the type-check).
interface PageEl {
  textContent: string | null;
  hidden: boolean;
  dataset: Record<string, string | undefined>;
}
declare const document: {
  getElementById(id: string): PageEl | null;
  addEventListener(type: string, fn: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};
declare const location: { href: string; pathname: string; hash: string };
declare const sessionStorage: {
  length: number;
  getItem(key: string): string | null;
  setItem(key: string, v: string): void;
  key(i: number): string | null;
};

const CHROMIUM = '/usr/bin/chromium';
const WAIT = 20_000;
const TOKEN_KEY = 'sluice.console.token';

describe('the console login through the identity provider, in Chromium', () => {
  let idp: LoginProvider;
  let g: TestGateway;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** Console errors and CSP violations on the console's own pages: none are expected. */
  const problems: string[] = [];

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps.sh`);
    idp = await startLoginProvider();
    g = await startGateway(
      {
        store: 'memory://',
        upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
        routes: [],
        identity: { issuers: { corp: { issuer: idp.issuer, audiences: [ADMIN_RESOURCE] } } },
        admin: {
          host: '127.0.0.1',
          port: 0,
          auth: {
            issuer: 'corp',
            audience: ADMIN_RESOURCE,
            console: {
              clientId: CONSOLE_CLIENT_ID,
              scopes: ['openid', 'sluice.admin'],
              resource: ADMIN_RESOURCE,
              label: 'Corp SSO',
            },
          },
        },
      },
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' } },
    );
    idp.allowConsole(g.adminUrl);
    for (const id of ['acme', 'globex'])
      assert.equal(
        (await adminCall(g.adminUrl, 'POST', '/admin/v1/tenants', { role: 'admin', body: { id, name: id } }))
          .status,
        201,
      );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await g?.stop();
    await idp?.close();
  });

  async function newPage(who: string): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    contexts.push(context);
    const page = await context.newPage();
    const ours = () => page.url().startsWith(g.adminUrl);
    page.on('console', (m) => {
      // 401 and 403 are provoked on purpose below (a refused token, a viewer's direct call).
      if (/status of 40[13]/.test(m.text()) || m.location().url.endsWith('/favicon.ico')) return;
      if (m.type() === 'error' && ours()) problems.push(`${who}: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => {
      if (ours()) problems.push(`${who} page error: ${e.message}`);
    });
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    return page;
  }

  /** From the console's login page through the provider's login and consent pages, back to the console. */
  async function throughProvider(page: Page, login: string): Promise<void> {
    await page.goto(`${g.adminUrl}/console/`);
    const button = page.locator('#sso-button');
    await button.waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await button.textContent(), 'Sign in with Corp SSO');
    await button.click();
    await page.waitForURL((u) => u.href.startsWith(`${idp.issuer}/interaction/`), { timeout: WAIT });
    await page.fill('input[name="login"]', login);
    await page.fill('input[name="password"]', 'any password');
    await page.click('button[type="submit"]');
    const consent = page.locator('button:has-text("Continue")');
    await consent.waitFor({ state: 'visible', timeout: WAIT });
    await consent.click();
    await page.waitForURL((u) => u.href.startsWith(g.adminUrl), { timeout: WAIT });
  }

  async function signIn(login: string): Promise<Page> {
    const page = await newPage(login);
    await throughProvider(page, login);
    await page.waitForFunction((n) => document.getElementById('who')?.textContent?.includes(n), login, {
      timeout: WAIT,
    });
    return page;
  }

  const go = async (page: Page, view: string) => {
    await page.click(`nav a[href="#${view}"]`);
    await page.waitForFunction((v) => location.hash === `#${v}`, view);
  };

  test('login options are public and say where to sign in, and nothing secret', async () => {
    const r = await fetch(`${g.adminUrl}/admin/v1/console/login-options`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { token: boolean; sso: Record<string, unknown> };
    assert.deepEqual(body, {
      token: true,
      sso: {
        label: 'Corp SSO',
        issuer: idp.issuer,
        clientId: CONSOLE_CLIENT_ID,
        scopes: ['openid', 'sluice.admin'],
        resource: ADMIN_RESOURCE,
        redirectPath: '/console/callback',
        authorizationEndpoint: `${idp.issuer}/auth`,
        tokenEndpoint: `${idp.issuer}/token`,
      },
    });
    // The page may call the token endpoint's origin and nothing else outside its own.
    const page = await fetch(`${g.adminUrl}/console/callback`);
    assert.equal(page.status, 200);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, new RegExp(`connect-src 'self' ${idp.issuer.replace(/[.:/]/g, '\\$&')};`));
    assert.match(csp, /script-src 'self';/);
    assert.match(csp, /form-action 'self';/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  });

  test('an operator signs in through the provider and lands on the console with its name and actions', async () => {
    const page = await signIn('ops-alice');
    assert.match(
      (await page.textContent('#who')) ?? '',
      /ops-alice \(operator, security\) · signed in with Corp SSO/,
    );
    // The code left the address at once; the token is in this tab's sessionStorage only.
    assert.equal(new URL(page.url()).pathname, '/console/');
    assert.doesNotMatch(page.url(), /code=|state=|token/);
    const stored = await page.evaluate(() => {
      const keys: string[] = [];
      for (let i = 0; i < sessionStorage.length; i++) keys.push(sessionStorage.key(i) ?? '');
      return keys.sort();
    });
    assert.deepEqual(
      stored,
      ['sluice.console.token', 'sluice.console.token.meta'],
      'the PKCE verifier is gone',
    );
    // The session says how it signed in.
    const via = await page.evaluate(() => document.getElementById('who')?.dataset.via);
    assert.equal(via, 'oidc');
    await go(page, 'tenants');
    const suspend = page.locator('#tenants-table tr[data-tenant="acme"] button[data-action="suspend"]');
    await suspend.waitFor({ state: 'visible', timeout: WAIT });
    await suspend.click();
    await page.waitForFunction(
      () =>
        document.getElementById('tenants-table') !== null &&
        /suspended/.test(document.getElementById('tenants-table')?.textContent ?? ''),
      null,
      { timeout: WAIT },
    );
    const t = await adminCall(g.adminUrl, 'GET', '/admin/v1/tenants/acme', { role: 'admin' });
    assert.equal((t.body as { status: string }).status, 'suspended');
    // Recorded under the name the provider signed in.
    const log = await adminCall(g.adminUrl, 'GET', '/admin/v1/changes?limit=50', { role: 'admin' });
    const actors = (log.body as { changes: { actor: string; action: string }[] }).changes
      .filter((c) => /suspend/.test(c.action))
      .map((c) => c.actor);
    assert.deepEqual(actors, ['ops-alice']);
  });

  test('a viewer sees no actions, and the API refuses them with its token', async () => {
    const page = await signIn('view-bob');
    assert.match((await page.textContent('#who')) ?? '', /view-bob \(viewer\)/);
    await go(page, 'tenants');
    await page.locator('#tenants-table tr[data-tenant="globex"]').waitFor({ timeout: WAIT });
    assert.equal(await page.locator('#tenants-table button[data-action]').count(), 0);
    const status = await page.evaluate(async (key) => {
      const r = await fetch('/admin/v1/tenants/globex/suspend', {
        method: 'POST',
        headers: { authorization: `Bearer ${sessionStorage.getItem(key)}` },
      });
      return r.status;
    }, TOKEN_KEY);
    assert.equal(status, 403);
  });

  test('a tampered state is refused and no token is kept', async () => {
    const page = await newPage('tampered');
    // The state is changed on its way to the provider, which answers with the changed one: the
    // answer the page gets back is not for the sign-in it started.
    await page.route(
      (u) => u.href.startsWith(`${idp.issuer}/auth?`),
      (route) =>
        route.continue({
          url: route
            .request()
            .url()
            .replace(/state=[^&]+/, 'state=tampered'),
        }),
    );
    await throughProvider(page, 'ops-alice');
    await page.waitForFunction(() => Boolean(document.getElementById('login-error')?.textContent), null, {
      timeout: WAIT,
    });
    assert.match((await page.textContent('#login-error')) ?? '', /Sign-in refused: .*\(state\)/);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.equal(await page.locator('#app').isHidden(), true);
  });

  test('sign-out forgets the token; a refused token goes back to the login page with the reason', async () => {
    const page = await signIn('ops-alice');
    await page.click('#logout');
    await page.locator('#sso-button').waitFor({ state: 'visible', timeout: WAIT });
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);

    const again = await signIn('view-bob');
    // The token stops being accepted (here: changed in storage, as a revoked one would be refused).
    await again.evaluate((key) => sessionStorage.setItem(key, `${sessionStorage.getItem(key)}x`), TOKEN_KEY);
    // Another view's reads use it. Not by a click on the nav: the open view's own next read (its
    // tick) may have been refused first, and the login page then hides the nav.
    await again.evaluate(() => {
      location.hash = '#tenants';
    });
    await again.waitForFunction(
      () => /expired or was refused/.test(document.getElementById('login-error')?.textContent ?? ''),
      null,
      { timeout: WAIT },
    );
    assert.match((await again.textContent('#login-error')) ?? '', /Corp SSO/);
    assert.equal(await again.evaluate(() => sessionStorage.getItem('sluice.console.token')), null);
  });

  test('when the access token expires the console goes back to the login page', async () => {
    idp.accessTokenTtl = 5;
    try {
      const page = await signIn('view-bob');
      await page.waitForFunction(
        () => /expired/.test(document.getElementById('login-error')?.textContent ?? ''),
        null,
        { timeout: WAIT },
      );
      assert.equal(await page.locator('#app').isHidden(), true);
      assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    } finally {
      idp.accessTokenTtl = 300;
    }
  });

  test('no console error and no CSP violation on the console pages', () => {
    assert.deepEqual(problems, []);
  });
});
