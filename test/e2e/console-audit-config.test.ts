/**
 * The console's audit, config and SLO views in a real browser (Debian's Chromium via playwright-core)
 * against a real gateway with the audit log on (signing key, checkpoints every entry), a route with
 * an availability SLO in front of a real upstream, and bootstrap tokens of every role.
 *
 * An admin suspends and resumes a tenant from the tenants page; the audit view then lists both
 * changes with the actor, and the chain verified up to the latest checkpoint (signature checked
 * with the configured key); an entry tampered with in the store turns the status to failed with
 * the index named. The config view shows the running version and, after an invalid file and a
 * reload from the page, the refusal with its file:line and path while the version stays (and no
 * literal secret of the file). The SLO view's budget drops as the test sends failing requests, to
 * the figure the test computes from what it sent. A viewer gets the refusal in words.
 *
 * Every wait is on a condition of the page or of the gateway, bounded.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { formatVkey } from '../../src/audit/checkpoint.js';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { goToView, PAGE_WAIT, signInWithToken } from '../harness/console-page.js';
import { eventually } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

interface PageEl {
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageEl | null;
}
declare const document: {
  getElementById(id: string): PageEl | null;
  querySelector(selector: string): PageEl | null;
  querySelectorAll(selector: string): { length: number; [i: number]: PageEl };
};
declare const location: { hash: string };

const CHROMIUM = '/usr/bin/chromium';

const ORIGIN = 'sluice.test/console-audit';
const SECRET = 'literal-s3cr3t-value';
const TARGET = 0.9; // the route's availability objective

describe('the audit, config and SLO views in Chromium', () => {
  let g: TestGateway;
  let up: TestUpstream;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'sluice-console-audit-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const vkey = formatVkey(ORIGIN, publicKey);
  const problems: string[] = [];

  const config = {
    store: 'memory://',
    audit: {
      enabled: true,
      origin: ORIGIN,
      outbox: { dir: join(dir, 'outbox') },
      checkpoint: { entries: 1, every: '100ms' },
    },
    upstreams: { up: { targets: [{ url: '' }] } },
    routes: [
      {
        name: 'svc',
        match: { path: { prefix: '/svc' } },
        upstream: 'up',
        slo: { availability: '90%' },
        // A literal secret in the file: the config view must never show it.
        headers: { request: { set: { authorization: `Bearer ${SECRET}` } } },
      },
    ],
  };

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/install-test-deps.sh`);
    up = await startUpstream((req, res) => {
      res.statusCode = req.url?.includes('/fail') ? 500 : 200;
      res.end('ok');
    });
    config.upstreams.up.targets[0]!.url = up.url;
    g = await startGateway(config, {
      env: {
        SLUICE_ADMIN_TOKENS: roleTokensEnv(),
        SLUICE_ADMIN_TOKEN: '',
        SLUICE_AUDIT_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      },
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    await g?.stop();
    await up?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function login(role: keyof typeof ROLE_TOKENS): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`${role} page error: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() < 400) return;
      const path = new URL(r.url()).pathname;
      // Expected: the viewer's refusals, and the refused reload of the invalid file.
      const expected =
        (role === 'viewer' && r.status() === 403) ||
        (r.status() === 422 && path === '/admin/v1/config/reload');
      if (!expected) problems.push(`${role}: ${r.status()} ${path}`);
    });
    page.on('console', (m) => {
      // A refused call is also logged by Chromium as a failed resource: those are judged by their
      // responses (below), where the expected refusals are told apart.
      if (m.type() === 'error' && !/^Failed to load resource/.test(m.text()))
        problems.push(`${role}: ${m.text()}`);
    });
    return signInWithToken(page, g.adminUrl, ROLE_TOKENS[role], `${role}-user`);
  }

  const go = goToView;
  const text = (page: Page, selector: string) =>
    page.locator(selector).first().textContent({ timeout: PAGE_WAIT });

  test('actions taken from the console are in the audit view with the actor; the chain verifies, then fails once tampered with', async () => {
    const created = await adminCall(g.adminUrl, 'POST', '/admin/v1/tenants', {
      role: 'admin',
      body: { id: 'acme', name: 'Acme' },
    });
    assert.equal(created.status, 201, created.text);
    const page = await login('admin');
    await go(page, 'tenants');
    await page.click('button[data-action="suspend"]', { timeout: PAGE_WAIT });
    await page.locator('tr[data-tenant="acme"][data-status="suspended"]').waitFor({ timeout: PAGE_WAIT });
    await page.click('button[data-action="resume"]', { timeout: PAGE_WAIT });
    await page.locator('tr[data-tenant="acme"][data-status="active"]').waitFor({ timeout: PAGE_WAIT });

    // The three changes (create, suspend, resume) under a checkpoint: the latest one covers them.
    const latest = await eventually(
      async () => {
        const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/audit/checkpoints', { role: 'auditor' });
        const cps = (r.body as { checkpoints: { treeSize: number }[] }).checkpoints;
        const q = await adminCall(g.adminUrl, 'GET', '/admin/v1/audit/entries?type=admin_change', {
          role: 'auditor',
        });
        const n = (q.body as { entries: unknown[] }).entries.length;
        const last = cps.at(-1);
        return n === 3 && last && last.treeSize >= 3 && r.body;
      },
      'the three admin changes integrated and checkpointed',
      15_000,
    );
    const cps = (latest as { checkpoints: { treeSize: number }[]; publicKeys: string[] }).checkpoints;
    assert.deepEqual((latest as { publicKeys: string[] }).publicKeys, [vkey]);

    await go(page, 'audit');
    await page.fill('#audit-type', 'admin_change');
    await page.fill('#audit-actor', 'admin-user');
    await page.click('#audit-search button[type="submit"]');
    await page.waitForFunction(
      () => document.querySelectorAll('#audit-table tr[data-type="admin_change"]').length === 3,
      undefined,
      { timeout: PAGE_WAIT },
    );
    const rows = await page.locator('#audit-table tbody tr[data-type]').allTextContents();
    for (const action of ['tenant.create', 'tenant.suspend', 'tenant.resume'])
      assert.ok(
        rows.some((r) => r.includes(action) && r.includes('admin-user') && r.includes('tenant:acme')),
        `${action} by admin-user in ${JSON.stringify(rows)}`,
      );
    // Details of an entry: the entry as the log committed to it.
    await page.locator('#audit-table tbody tr[data-type] button').first().click();
    assert.match((await text(page, '#audit-table tr[data-details-of] pre')) ?? '', /"integratedAt"/);

    // The status, re-verified until the page's latest checkpoint is at least the one the API named.
    const size = cps.at(-1)!.treeSize;
    await eventually(
      async () => {
        await page.click('#audit-reverify', { timeout: PAGE_WAIT });
        await page.waitForFunction(
          () => document.getElementById('audit-status')?.getAttribute('aria-busy') === 'false',
        );
        const treeSize = Number(await text(page, '[data-field="tree-size"]'));
        return treeSize >= size;
      },
      'the status at the latest checkpoint',
      15_000,
    );
    assert.equal(await page.locator('[data-field="chain-state"]').getAttribute('data-state'), 'verified');
    const treeSize = Number(await text(page, '[data-field="tree-size"]'));
    assert.equal(Number(await text(page, '[data-field="entries-verified"]')), treeSize);
    assert.match((await text(page, '[data-field="signature"]')) ?? '', new RegExp(`verified with ${ORIGIN}`));
    assert.match((await text(page, '#audit-verify-command')) ?? '', /sluice audit verify --bundle/);
    assert.ok((await text(page, '#audit-verify-command'))?.includes(vkey));

    // The bundle downloads and holds the entries.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#audit-download')]);
    const file = join(dir, 'bundle.json');
    await download.saveAs(file);
    const bundle = JSON.parse(readFileSync(file, 'utf8')) as { format: string; entries: unknown[] };
    assert.equal(bundle.format, 'sluice-audit-bundle/v1');
    assert.ok(bundle.entries.length >= 3);

    // Tampered with in the store: entry 1's reason edited.
    const store = g.gw.tenancy!.store;
    await store.query(
      `UPDATE audit_entries SET entry = jsonb_set(entry, '{reason}', '"edited"') WHERE seq = 1`,
    );
    await page.click('#audit-reverify');
    await page.locator('[data-field="chain-state"][data-state="failed"]').waitFor({ timeout: PAGE_WAIT });
    const problem = (await text(page, '#audit-problems li[data-kind="modified"]')) ?? '';
    assert.match(problem, /at index 1:/);
    assert.deepEqual(problems, []);
  });

  test('the config view shows the version and the source without its secret, and a refused reload with its error while the version stays', async () => {
    const running = g.gw.runtime.version;
    const page = await login('admin');
    await go(page, 'config');
    await page.locator('[data-field="config-version"]').waitFor({ timeout: PAGE_WAIT });
    assert.equal(await text(page, '[data-field="config-version"]'), running);
    const source = (await text(page, '#config-source')) ?? '';
    assert.match(source, /authorization: "Bearer <redacted>"|authorization: "<redacted>"/);
    assert.ok(!source.includes(SECRET), 'the literal secret is not shown');
    assert.ok(!(await page.content()).includes(SECRET));

    // An invalid file: a route to an upstream that does not exist, on line 3 of the file.
    writeFileSync(
      g.file,
      'routes:\n  - name: broken\n    upstream: nowhere\n    match: { path: { prefix: /b } }\n',
    );
    await page.click('#config-reload');
    await page.locator('#reloads-table tr[data-result="rejected"]').waitFor({ timeout: PAGE_WAIT });
    const notice = (await text(page, '#notice')) ?? '';
    assert.match(notice, /Reload refused .*the running config stays/);
    const errors = await page
      .locator('#reloads-table tr[data-result="rejected"] [data-field="reload-error"]')
      .allTextContents();
    assert.ok(errors.length > 0);
    assert.ok(
      errors.some((e) => e.includes(`${g.file}:`)),
      `an error with the file and line: ${JSON.stringify(errors)}`,
    );
    assert.ok(
      errors.some((e) => /nowhere|upstream/.test(e)),
      JSON.stringify(errors),
    );
    assert.equal(await text(page, '[data-field="config-version"]'), running);
    assert.equal(g.gw.runtime.version, running);
    const row = (await text(page, '#reloads-table tr[data-result="rejected"]')) ?? '';
    assert.match(row, /admin/);
    assert.ok(row.includes(running), 'the version after the refusal is the running one');
    assert.deepEqual(problems, []);
  });

  test("the SLO view's error budget drops by what the failing requests cost", async () => {
    const send = async (path: string) => {
      const r = await fetch(`${g.url}${path}`);
      await r.arrayBuffer();
      return r.status;
    };
    const page = await login('viewer');
    await go(page, 'slo');
    const good = 10;
    for (let i = 0; i < good; i++) assert.equal(await send('/svc/ok'), 200);
    const budget = (bad: number, total: number) => `${((1 - bad / total / (1 - TARGET)) * 100).toFixed(1)} %`;
    const cell = '#slo-table tr[data-route="svc"][data-slo="availability"]';
    await page.waitForFunction(
      ([sel, want]) => document.querySelector(`${sel} [data-field="budget-value"]`)?.textContent === want,
      [cell, budget(0, good)] as const,
      { timeout: PAGE_WAIT },
    );
    assert.match((await text(page, `${cell} [data-field="budget"]`)) ?? '', /healthy/);
    // One failing request and nine good ones: 1 bad of 20, half the 10 % budget.
    assert.equal(await send('/svc/fail'), 500);
    for (let i = 0; i < 9; i++) assert.equal(await send('/svc/ok'), 200);
    const want = budget(1, good + 10);
    await page.waitForFunction(
      ([sel, w]) => document.querySelector(`${sel} [data-field="budget-value"]`)?.textContent === w,
      [cell, want] as const,
      { timeout: PAGE_WAIT },
    );
    assert.equal(want, '50.0 %');
    assert.equal(await text(page, `${cell} [data-field="events"]`), `${good + 9} good of ${good + 10}`);
    assert.equal(await text(page, `${cell} [data-field="sli"]`), '95.0 %');
    // Burn rate over 5 minutes: (1/20) / 0.1 = 0.5, under 1: ok.
    assert.match((await text(page, `${cell} [data-window="5m"]`)) ?? '', /0\.50× ok/);
    // Sent more failures than the budget allows: 3 more bad of 23 → exhausted.
    for (let i = 0; i < 3; i++) assert.equal(await send('/svc/fail'), 500);
    await page.waitForFunction(
      ([sel, w]) => document.querySelector(`${sel} [data-field="budget-value"]`)?.textContent === w,
      [cell, budget(4, good + 13)] as const,
      { timeout: PAGE_WAIT },
    );
    assert.match((await text(page, `${cell} [data-field="budget"]`)) ?? '', /exhausted/);
    assert.deepEqual(problems, []);
  });

  test('a viewer gets the refusal in words on the audit view', async () => {
    const page = await login('viewer');
    await go(page, 'audit');
    const refused = (await text(page, '#audit-refused')) ?? '';
    assert.match(refused, /may not read the audit log/);
    assert.match(refused, /audit\.read/);
    const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/audit/status', { role: 'viewer' });
    assert.equal(r.status, 403);
  });
});
