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
import { httpRequest } from '../test/harness/flow.js';
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
    ],
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
for (const [id, name, plan] of [
  ['acme', 'Acme Corp', 'enterprise'],
  ['globex', 'Globex', 'pro'],
  ['initech', 'Initech', 'free'],
] as const) {
  await adminCall(g.adminUrl, 'POST', '/admin/v1/tenants', { role: 'admin', body: { id, name, plan } });
  await adminCall(g.adminUrl, 'POST', `/admin/v1/tenants/${id}/keys`, {
    role: 'admin',
    body: { name: 'ci' },
  });
}

let stop = false;
let n = 0;
const send = async (path: string) => {
  while (!stop)
    await httpRequest(`${g.url}${path}`, { headers: { 'x-user': `u${n++ % 500}` } }).catch(() => {});
};
const traffic = Promise.all([send('/web/x'), send('/api/x'), send('/api/y')]);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  await page.goto(`${g.adminUrl}/console/`);
  await page.fill('#token', ROLE_TOKENS.admin);
  await page.press('#token', 'Enter');
  await page.waitForFunction(() => document.getElementById('who')?.textContent?.includes('admin-user'));
  for (const view of ['traffic', 'upstreams', 'releases', 'tenants', 'slo', 'audit', 'config']) {
    await page.click(`nav a[href="#${view}"]`);
    // Charts and tables fill from the stream (a tick a second): a few ticks in, every view has data.
    await page.waitForTimeout(view === 'traffic' ? 6000 : 2500);
    await page.screenshot({ path: `${out}${view}.png` });
    console.log(`docs/console/${view}.png`);
  }
} finally {
  stop = true;
  await traffic;
  await browser.close();
  await g.stop();
  await Promise.all([a.kill(), b.kill(), v1.close(), v2.close()]);
}
