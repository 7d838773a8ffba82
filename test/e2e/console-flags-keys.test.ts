/**
 * The console's flags view, a tenant's keys and its usage, in a real browser (Debian's Chromium
 * driven by playwright-core) against a real gateway on the embedded store with a real upstream:
 * - an operator changes a flag's rollout from the page; OFREP through the gateway follows (checked
 *   against an independent bucketing oracle, imurmurhash), the history shows who and why; an edit
 *   made on a revision someone else changed meanwhile is refused and said, not overwritten;
 * - a viewer sees no edit control and the API refuses its PUT;
 * - a security user creates a key from the page, the secret shown once (in a dialog, never in web
 *   storage) authenticates through the gateway, and after revoking it from the page it is refused;
 * - the usage the page shows after N requests is N (counted here, not by the gateway).
 * Every wait is on a condition of the page or of the gateway, bounded.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import MurmurHash3 from 'imurmurhash';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { goToView, PAGE_WAIT, signInWithToken } from '../harness/console-page.js';
import { eventually, httpRequest, untilPasses } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

// What the page-side callbacks touch, declared for this file only (the type-check has no DOM lib).
interface PageEl {
  textContent: string | null;
  id: string;
  value: string;
  open: boolean;
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageEl | null;
  querySelectorAll(selector: string): { length: number };
}
declare const document: {
  activeElement: PageEl | null;
  body: { outerHTML: string };
  getElementById(id: string): PageEl | null;
  querySelector(selector: string): PageEl | null;
  querySelectorAll(selector: string): { length: number };
  addEventListener(type: string, fn: (e: { violatedDirective: string; blockedURI: string }) => void): void;
};
declare const location: { hash: string };
interface WebStorage {
  length: number;
  key(i: number): string | null;
  getItem(key: string): string | null;
}
declare const sessionStorage: WebStorage;
declare const localStorage: WebStorage;
declare const navigator: { clipboard: { readText(): Promise<string> } };

const CHROMIUM = '/usr/bin/chromium';

const FLAG = 'new-search';

/** The independent oracle of bucketing v1 (as test/e2e/flags.test.ts): salt = the flag key. */
const bucket = (salt: string, key: string) =>
  Math.floor(((MurmurHash3(`${salt}/${key}`).result() >>> 0) * 10000) / 2 ** 32);

const flagSpec = {
  description: 'the new search page',
  enabled: true,
  variants: { on: true, off: false },
  defaultVariant: 'off',
  rules: [{ name: 'staff', when: [{ attribute: 'tenant.labels.staff', in: ['yes'] }], variant: 'on' }],
  rollout: {
    by: 'user',
    variants: [
      { variant: 'on', weight: 0 },
      { variant: 'off', weight: 100 },
    ],
  },
};

describe('the console: flags, keys and usage in Chromium', () => {
  let g: TestGateway;
  let up: TestUpstream;
  let browser: Browser;
  let acmeKey: string;
  const contexts: BrowserContext[] = [];
  const problems: string[] = [];

  const call = (
    method: string,
    path: string,
    role: keyof typeof ROLE_TOKENS,
    body?: unknown,
    headers?: Record<string, string>,
  ) => adminCall(g.adminUrl, method, path, { role, body, headers });

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps.sh`);
    up = await startUpstream();
    g = await startGateway(
      {
        store: 'memory://',
        upstreams: { up: { targets: [{ url: up.url }] } },
        quotas: { define: { api: { plans: { default: { daily: 20, monthly: 1000 } } } } },
        budgets: { currency: 'EUR', action: 'block', plans: { default: 1 } },
        routes: [
          {
            name: 'keyed',
            match: { path: { prefix: '/keyed' } },
            upstream: 'up',
            auth: { apiKey: true },
            quota: { use: ['api'] },
            cost: { perRequest: 0.01 },
          },
          {
            name: 'ofrep',
            match: { path: { prefix: '/ofrep/' }, methods: ['POST'] },
            ofrep: true,
            auth: { apiKey: true },
          },
        ],
      },
      { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' } },
    );
    for (const id of ['acme', 'metered']) {
      const t = await call('POST', '/admin/v1/tenants', 'admin', { id, name: id.toUpperCase() });
      assert.equal(t.status, 201, t.text);
    }
    const k = await call('POST', '/admin/v1/tenants/acme/keys', 'admin', { name: 'ofrep' });
    assert.equal(k.status, 201, k.text);
    acmeKey = (k.body as { secret: string }).secret;
    const f = await call('PUT', `/admin/v1/flags/${FLAG}`, 'admin', flagSpec);
    assert.equal(f.status, 201, f.text);
    await g.gw.flagServices!.source.until((s) => s.flags.has(FLAG), 10_000);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await g?.stop();
    await up?.close();
  });

  async function login(role: keyof typeof ROLE_TOKENS): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'en-US' });
    contexts.push(context);
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`${role} console: ${m.text()} ${m.location().url}`);
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

  /** The variant OFREP serves for each targeting key, through the gateway. */
  const served = async (keys: string[]) => {
    const out: boolean[] = [];
    for (const k of keys) {
      const r = await httpRequest(`${g.url}/ofrep/v1/evaluate/flags/${FLAG}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': acmeKey },
        body: JSON.stringify({ context: { targetingKey: k } }),
      });
      assert.equal(r.status, 200, r.text);
      out.push(r.json<{ value: boolean }>().value);
    }
    return out;
  };
  const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);

  const card = `article[data-flag="${FLAG}"]`;
  const revisionOnPage = (page: Page) =>
    page.evaluate((sel) => Number(document.querySelector(sel)?.getAttribute('data-revision')), card);

  test("an operator changes a flag's rollout from the page: OFREP follows, the history shows who and why", async () => {
    assert.deepEqual(
      await served(users),
      users.map(() => false),
      'rollout 0 %: nobody has it',
    );
    const page = await login('operator');
    await go(page, 'flags');
    await page.locator(card).waitFor({ timeout: PAGE_WAIT });
    // Everything of the flag is on the page, in words.
    const text = (await page.textContent(card)) ?? '';
    assert.match(text, /enabled/);
    assert.match(text, /staff: when tenant\.labels\.staff is one of "yes" → variant on/);
    assert.match(
      (await page.textContent(`${card} [data-field="rollout"]`)) ?? '',
      /by user: on 0 %, off 100 %/,
    );
    assert.match((await page.textContent(`${card} tr[data-variant="off"]`)) ?? '', /default/);
    const rev = await revisionOnPage(page);

    // Keyboard only: focus Edit, Enter; the form takes focus.
    await page.focus(`${card} button[data-action="edit"]`);
    await page.keyboard.press('Enter');
    const form = `form[data-edit="${FLAG}"]`;
    await page.locator(form).waitFor({ timeout: PAGE_WAIT });
    assert.equal(await page.evaluate(() => document.activeElement?.id), `edit-${FLAG}-enabled`);
    await page.fill(`${form} [data-rollout="top"] input[data-weight="on"]`, '30');
    // Not 100 yet: said in words, and a save is refused by the page.
    assert.match(
      (await page.textContent(`${form} [data-rollout="top"] [data-field="total"]`)) ?? '',
      /130 %: the weights must sum to 100/,
    );
    await page.fill(`${form} [data-rollout="top"] input[data-weight="off"]`, '70');
    const reason = 'widen to 30 % — ticket OPS-12';
    await page.fill(`#edit-${FLAG}-reason`, reason);
    await page.press(`#edit-${FLAG}-reason`, 'Enter');
    await page.waitForFunction(
      ([sel, r]) => Number(document.querySelector(sel as string)?.getAttribute('data-revision')) === r,
      [card, rev + 1] as const,
      { timeout: PAGE_WAIT },
    );
    assert.match((await page.textContent(`${card} [data-field="rollout"]`)) ?? '', /on 30 %, off 70 %/);

    // The gateway follows: each user gets what the oracle says for 30 %.
    const expected = users.map((u) => bucket(FLAG, u) < 3000);
    assert.ok(expected.some(Boolean) && !expected.every(Boolean), 'the sample has both sides');
    await untilPasses(async () => assert.deepEqual(await served(users), expected), PAGE_WAIT);

    // The history opens after a save, on the page and in the API: the operator, the change, the reason.
    assert.equal(await page.getAttribute(`${card} button[data-action="history"]`, 'aria-expanded'), 'true');
    const entry = `${card} li[data-actor="operator-user"]`;
    await page.locator(entry).first().waitFor({ timeout: PAGE_WAIT });
    const line = (await page.locator(entry).first().textContent()) ?? '';
    assert.match(line, /operator-user \(operator\)/);
    assert.match(line, /rollout on 0 %, off 100 % → on 30 %, off 70 %/);
    assert.ok(line.includes(`reason: ${reason}`), line);
    const h = await call('GET', `/admin/v1/flags/${FLAG}/history?limit=1`, 'viewer');
    const last = (h.body as { changes: { actor: string; after: { reason?: string } }[] }).changes[0]!;
    assert.equal(last.actor, 'operator-user');
    assert.equal(last.after.reason, reason);
  });

  test('an edit on a revision someone changed meanwhile is refused and said; the other change stays', async () => {
    const page = await login('operator');
    await go(page, 'flags');
    await page.locator(card).waitFor({ timeout: PAGE_WAIT });
    const rev = await revisionOnPage(page);
    await page.click(`${card} button[data-action="edit"]`);
    const form = `form[data-edit="${FLAG}"]`;
    await page.locator(form).waitFor({ timeout: PAGE_WAIT });
    // Meanwhile, someone else disables the flag through the API.
    const cur = (await call('GET', `/admin/v1/flags/${FLAG}`, 'admin')).body as { spec: object };
    const other = await call(
      'PUT',
      `/admin/v1/flags/${FLAG}`,
      'admin',
      { ...cur.spec, enabled: false },
      { 'if-match': `"${rev}"` },
    );
    assert.equal(other.status, 200, other.text);
    await page.fill(`${form} [data-rollout="top"] input[data-weight="on"]`, '50');
    await page.fill(`${form} [data-rollout="top"] input[data-weight="off"]`, '50');
    await page.fill(`#edit-${FLAG}-reason`, 'half');
    await page.click(`${form} button[data-action="save"]`);
    await page.waitForFunction(
      (sel) => document.querySelector(`${sel} .error`)?.dataset.conflict === 'true',
      form,
      { timeout: PAGE_WAIT },
    );
    const msg = (await page.textContent(`${form} .error`)) ?? '';
    assert.match(msg, /changed by someone else/);
    assert.match(msg, new RegExp(`revision ${rev + 1}, changed by admin-user`));
    // Nothing was overwritten: the admin's change is what the store holds.
    const now = (await call('GET', `/admin/v1/flags/${FLAG}`, 'viewer')).body as {
      revision: number;
      spec: { enabled: boolean; rollout: { variants: { weight: number }[] } };
    };
    assert.equal(now.revision, rev + 1);
    assert.equal(now.spec.enabled, false);
    assert.deepEqual(
      now.spec.rollout.variants.map((v) => v.weight),
      [30, 70],
    );
    // Reload shows the current definition: disabled, in words.
    await page.click(`${form} button[data-action="reload"]`);
    await page.waitForFunction(
      ([sel, r]) => Number(document.querySelector(sel as string)?.getAttribute('data-revision')) === r,
      [card, rev + 1] as const,
      { timeout: PAGE_WAIT },
    );
    assert.match((await page.textContent(`${card} [data-field="state"]`)) ?? '', /disabled/);
    // Enable it again for what follows.
    const back = await call('PUT', `/admin/v1/flags/${FLAG}`, 'admin', { ...cur.spec });
    assert.equal(back.status, 200, back.text);
  });

  test('a viewer sees flags with no edit control, and the API refuses its PUT', async () => {
    const page = await login('viewer');
    await go(page, 'flags');
    await page.locator(card).waitFor({ timeout: PAGE_WAIT });
    assert.equal(await page.locator('button[data-action="edit"]').count(), 0, 'no edit button');
    assert.equal(await page.locator('form[data-edit]').count(), 0);
    assert.equal(await page.locator(`${card} button[data-action="history"]`).count(), 1, 'history is read');
    // Search is on the server: a query that matches nothing shows nothing.
    await page.fill('#flag-search', 'zzz-nothing');
    await page.waitForFunction(
      () => /No flags match/.test(document.getElementById('flag-count')?.textContent ?? ''),
      null,
      {
        timeout: PAGE_WAIT,
      },
    );
    const before = (await call('GET', `/admin/v1/flags/${FLAG}`, 'viewer')).body as { revision: number };
    const token = await page.evaluate(() => sessionStorage.getItem('sluice.console.token'));
    const r = await adminCall(g.adminUrl, 'PUT', `/admin/v1/flags/${FLAG}`, {
      token: token ?? '',
      body: { ...flagSpec, enabled: false },
    });
    assert.equal(r.status, 403, r.text);
    assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-003');
    const after = (await call('GET', `/admin/v1/flags/${FLAG}`, 'viewer')).body as { revision: number };
    assert.equal(after.revision, before.revision);
  });

  test('the flags list is paged and searched on the server', async () => {
    const simple = { enabled: true, variants: { on: true, off: false }, defaultVariant: 'off' };
    for (let i = 0; i < 25; i++) {
      const r = await call('PUT', `/admin/v1/flags/page-${String(i).padStart(2, '0')}`, 'admin', simple);
      assert.equal(r.status, 201, r.text);
    }
    const api = await call('GET', '/admin/v1/flags?q=PAGE-&limit=5&offset=20', 'viewer');
    const body = api.body as { flags: { key: string }[]; total: number };
    assert.equal(body.total, 25);
    assert.deepEqual(
      body.flags.map((f) => f.key),
      ['page-20', 'page-21', 'page-22', 'page-23', 'page-24'],
    );
    const page = await login('viewer');
    await go(page, 'flags');
    const count = (re: RegExp) =>
      page.waitForFunction(
        (src) => new RegExp(src).test(document.getElementById('flag-count')?.textContent ?? ''),
        re.source,
        {
          timeout: PAGE_WAIT,
        },
      );
    await count(/^1–20 of 26$/);
    assert.equal(await page.locator('article[data-flag]').count(), 20, 'one page at a time');
    await page.click('#flag-next');
    await count(/^21–26 of 26$/);
    await page.fill('#flag-search', 'page-1');
    await count(/^1–10 of 10$/);
    assert.equal(await page.locator('article[data-flag="page-10"]').count(), 1);
    for (let i = 0; i < 25; i++)
      await call('DELETE', `/admin/v1/flags/page-${String(i).padStart(2, '0')}`, 'admin');
  });

  test('a security user creates a key (the secret shown once works), then revokes it from the page (refused)', async () => {
    const keyed = async (secret: string) =>
      (await httpRequest(`${g.url}/keyed/x`, { headers: { 'x-api-key': secret } })).status;
    // Roles without keys.write see the keys but no create form and no revoke button.
    for (const role of ['viewer', 'operator'] as const) {
      const p = await login(role);
      await go(p, 'tenants');
      await p.click('tr[data-tenant="acme"] button[data-keys]');
      await p.locator('[data-keys-table="acme"] table').waitFor({ timeout: PAGE_WAIT });
      assert.equal(await p.locator('form[data-create-key]').count(), 0, role);
      assert.equal(await p.locator('button[data-action="revoke"]').count(), 0, role);
    }

    const page = await login('security');
    await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: g.adminUrl });
    await go(page, 'tenants');
    await page.click('tr[data-tenant="acme"] button[data-keys]');
    await page.locator('form[data-create-key="acme"]').waitFor({ timeout: PAGE_WAIT });
    await page.fill('#key-acme-name', 'made-in-console');
    await page.fill('#key-acme-scopes', 'read, write');
    await page.press('#key-acme-name', 'Enter');
    await page.waitForFunction(() => document.getElementById('key-secret-dialog')?.open === true, null, {
      timeout: PAGE_WAIT,
    });
    // Focus is in the dialog, on the secret.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'key-secret');
    const secret = await page.inputValue('#key-secret');
    assert.match(secret, /^sk_/);
    await page.click('[data-action="copy-secret"]');
    await page.waitForFunction(
      () => /Copied/.test(document.getElementById('key-secret-status')?.textContent ?? ''),
      null,
      { timeout: PAGE_WAIT },
    );
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
    // Never in web storage.
    const stored = await page.evaluate(() => {
      const all: string[] = [];
      for (const s of [sessionStorage, localStorage])
        for (let i = 0; i < s.length; i++) all.push(`${s.key(i)}=${s.getItem(s.key(i) ?? '')}`);
      return all.join('\n');
    });
    assert.ok(!stored.includes(secret), 'the secret is not in sessionStorage or localStorage');

    // The secret authenticates through the gateway.
    await eventually(async () => (await keyed(secret)) === 200, 'the new key is served', PAGE_WAIT);

    // Escape closes the dialog: it is gone from the page, the secret with it; focus returns.
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.getElementById('key-secret-dialog') === null, null, {
      timeout: PAGE_WAIT,
    });
    assert.ok(!(await page.evaluate(() => document.body.outerHTML)).includes(secret));
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.action), 'create-key');
    // The API has only metadata to give back.
    const list = await call('GET', '/admin/v1/tenants/acme/keys', 'admin');
    assert.ok(!list.text.includes(secret.slice(-16)));
    const made = (list.body as { keys: { id: string; name: string; scopes: string[] }[] }).keys.find(
      (k) => k.name === 'made-in-console',
    );
    assert.ok(made, list.text);
    assert.deepEqual(made.scopes, ['read', 'write']);

    // Revoke from the page, confirming.
    const row = `tr[data-key="${made.id}"]`;
    await page.locator(`${row} button[data-action="revoke"]`).waitFor({ timeout: PAGE_WAIT });
    page.once('dialog', (d) => void d.accept());
    await page.click(`${row} button[data-action="revoke"]`);
    await page.waitForFunction(
      (sel) => document.querySelector(sel)?.getAttribute('data-status') === 'revoked',
      row,
      {
        timeout: PAGE_WAIT,
      },
    );
    assert.match((await page.textContent(`${row} [data-field="status"]`)) ?? '', /revoked/);
    await eventually(async () => (await keyed(secret)) === 401, 'the revoked key is refused', PAGE_WAIT);
    // Declining the confirmation revokes nothing.
    page.once('dialog', (d) => void d.dismiss());
    const other = (list.body as { keys: { id: string; name: string }[] }).keys.find(
      (k) => k.name === 'ofrep',
    )!;
    await page.click(`tr[data-key="${other.id}"] button[data-action="revoke"]`);
    assert.equal(await keyed(acmeKey), 200);
  });

  test('usage after N requests shows N against the plan limits, and the spend against the budget', async () => {
    const k = await call('POST', '/admin/v1/tenants/metered/keys', 'admin', { name: 'meter' });
    const secret = (k.body as { secret: string }).secret;
    await eventually(
      async () =>
        (
          await httpRequest(`${g.url}/ofrep/v1/evaluate/flags/${FLAG}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-api-key': secret },
            body: '{"context":{"targetingKey":"u"}}',
          })
        ).status === 200,
      'the key is known (on a route without quota)',
      PAGE_WAIT,
    );
    const N = 7;
    let served = 0;
    for (let i = 0; i < N; i++)
      if ((await httpRequest(`${g.url}/keyed/x`, { headers: { 'x-api-key': secret } })).status === 200)
        served++;
    assert.equal(served, N);

    const page = await login('viewer');
    await go(page, 'tenants');
    await page.click('tr[data-tenant="metered"] button[data-keys]');
    const day = '[data-usage-of="metered"] td[data-quota="api"][data-period="day"]';
    const month = '[data-usage-of="metered"] td[data-quota="api"][data-period="month"]';
    // 7 of 20 a day (35 %), 7 of 1,000 a month (0 %): written out by this test.
    await page.waitForFunction(
      (sel) => (document.querySelector(sel)?.textContent ?? '').includes('7 of 20 (35%)'),
      day,
      { timeout: PAGE_WAIT },
    );
    assert.match((await page.textContent(month)) ?? '', /7 of 1,000 \(0%\)/);
    assert.match((await page.textContent(day)) ?? '', /within the limit/);
    assert.equal(await page.locator(`${day} meter`).getAttribute('value'), '7');
    // 7 × €0.01 of a €1 budget.
    const budget = '[data-usage-of="metered"] tr[data-budget="up"]';
    assert.match((await page.textContent(budget)) ?? '', /€0\.07 of €1\.00 \(7%\)/);
  });

  test('no page logged an error or a Content-Security-Policy violation', () => {
    // Expected: the refused save of the conflict test (409), and the browser's own favicon request.
    const unexpected = problems.filter(
      (p) => !/status of 409 .*\/admin\/v1\/flags\/new-search$/.test(p) && !/\/favicon\.ico$/.test(p),
    );
    assert.deepEqual(unexpected, []);
  });
});
