/**
 * Regenerates the console screenshots in docs/console/ (the README shows them), so they stay true
 * to the code: a real gateway on the embedded store with real upstreams (a health-checked group, a
 * canary between two versions, tenants with keys), traffic flowing from this process, Debian's
 * Chromium at a laptop size (1366x768), one PNG per view once its figures are on the page.
 *   node --import tsx scripts/console-screenshots.ts
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../test/harness/admin.js';
import { eventually, httpRequest } from '../test/harness/flow.js';
import { startGateway } from '../test/harness/gateway.js';
import { startNode } from '../test/harness/nodes.js';
import { timings, version } from '../test/harness/releases.js';

declare const document: { getElementById(id: string): { textContent: string | null } | null };

const out = new URL('../docs/console/', import.meta.url).pathname;
mkdirSync(out, { recursive: true });

const [a, b, v1, v2] = await Promise.all([startNode('a'), startNode('b'), version('v1'), version('v2')]);
const g = await startGateway(
  {
    store: 'memory://',
    // The audit view's log (an in-memory store signs with a key that lives as long as the process).
    audit: {
      enabled: true,
      outbox: { dir: mkdtempSync(join(tmpdir(), 'sluice-shots-outbox-')) },
      checkpoint: { entries: 1, every: '1s' },
    },
    upstreams: {
      web: {
        targets: [{ url: a.origin }, { url: b.origin }],
        healthCheck: { path: '/health', interval: '500ms', timeout: '300ms' },
      },
      v1: { targets: [{ url: v1.url }] },
      v2: { targets: [{ url: v2.url }] },
    },
    routes: [
      { name: 'web', match: { path: { prefix: '/web' } }, upstream: 'web', slo: { availability: '99.9%' } },
      { name: 'api', match: { path: { prefix: '/api' } }, upstream: 'v1' },
      {
        name: 'metered',
        match: { path: { prefix: '/metered' } },
        upstream: 'v1',
        auth: { apiKey: true },
        quota: { use: ['api'] },
        cost: { perRequest: 0.002 },
      },
    ],
    quotas: { define: { api: { plans: { default: { daily: 1000, monthly: 20000 } } } } },
    budgets: { currency: 'EUR', action: 'block', plans: { default: 5 } },
    releases: {
      api: {
        route: 'api',
        candidate: 'v2',
        sticky: { by: ['header:x-user'] },
        steps: [{ weight: 25, duration: '1h' }, { weight: 50, duration: '1h' }, { weight: 100 }],
        analysis: { interval: '1s', minSamples: 30, inconclusiveLimit: 100_000 },
      },
    },
  },
  { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' }, releaseTimings: timings },
);
const secrets: string[] = [];
for (const [id, name, plan] of [
  ['acme', 'Acme Corp', 'enterprise'],
  ['globex', 'Globex', 'pro'],
  ['initech', 'Initech', 'free'],
] as const) {
  await adminCall(g.adminUrl, 'POST', '/admin/v1/tenants', { role: 'admin', body: { id, name, plan } });
  const k = await adminCall(g.adminUrl, 'POST', `/admin/v1/tenants/${id}/keys`, {
    role: 'admin',
    body: { name: 'ci' },
  });
  secrets.push((k.body as { secret: string }).secret);
}
await adminCall(g.adminUrl, 'PUT', '/admin/v1/flags/new-checkout', {
  role: 'admin',
  headers: { 'x-sluice-reason': encodeURIComponent('the new checkout, 10 % of users first') },
  body: {
    description: 'The new checkout',
    enabled: true,
    variants: { on: true, off: false },
    defaultVariant: 'off',
    rules: [
      { name: 'beta tenants', when: [{ attribute: 'tenant.plan', in: ['enterprise'] }], variant: 'on' },
    ],
    rollout: {
      by: 'user',
      variants: [
        { variant: 'on', weight: 10 },
        { variant: 'off', weight: 90 },
      ],
    },
  },
});

let stop = false;
let n = 0;
const send = async (path: string) => {
  while (!stop)
    await httpRequest(`${g.url}${path}`, { headers: { 'x-user': `u${n++ % 500}` } }).catch(() => {});
};
const traffic = Promise.all([send('/web/x'), send('/api/x'), send('/api/y')]);
// Some metered requests for acme: usage against its quota and budget on the tenant's details
// (first once the new key has reached the gateway's snapshot).
const metered = () => httpRequest(`${g.url}/metered/x`, { headers: { 'x-api-key': secrets[0]! } });
await eventually(async () => (await metered()).status === 200, 'the acme key served', 10_000);
for (let i = 0; i < 240; i++)
  await httpRequest(`${g.url}/metered/x`, { headers: { 'x-api-key': secrets[0]! } }).catch(() => {});

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await page.goto(`${g.adminUrl}/console/`);
  await page.fill('#token', ROLE_TOKENS.admin);
  await page.press('#token', 'Enter');
  await page.waitForFunction(() => document.getElementById('who')?.textContent?.includes('admin-user'));
  for (const view of ['traffic', 'upstreams', 'releases', 'tenants', 'flags', 'slo', 'audit', 'config']) {
    await page.click(`nav a[href="#${view}"]`);
    // Charts and tables fill from the stream (a tick a second): a few ticks in, every view has data.
    await page.waitForTimeout(view === 'traffic' ? 6000 : 2500);
    await page.screenshot({ path: `${out}${view}.png` });
    console.log(`docs/console/${view}.png`);
  }
  // A tenant's details (keys, usage against quotas and budgets), and a new key's one-time dialog.
  await page.click('nav a[href="#tenants"]');
  await page.click('tr[data-tenant="acme"] button[data-keys]');
  await page.locator('[data-usage-of="acme"] table').first().waitFor();
  await page.screenshot({ path: `${out}tenant-details.png`, fullPage: true });
  console.log('docs/console/tenant-details.png');
  await page.fill('#key-acme-name', 'screenshot');
  await page.press('#key-acme-name', 'Enter');
  await page.locator('#key-secret-dialog').waitFor();
  await page.screenshot({ path: `${out}key-created.png` });
  console.log('docs/console/key-created.png');
  await page.keyboard.press('Escape');
} finally {
  stop = true;
  await traffic;
  await browser.close();
  await g.stop();
  await Promise.all([a.kill(), b.kill(), v1.close(), v2.close()]);
}
