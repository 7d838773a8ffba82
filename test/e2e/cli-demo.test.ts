/**
 * The README's run command, as close as a test can get: `sluice start --demo` on the bundled
 * example (ports and data directory moved aside so parallel tests never collide). The demo
 * upstream answers, the printed API key opens the private route, the printed admin token opens the
 * admin API (with curl's header and with the CLI, as printed) while a wrong one is refused, and
 * SIGTERM exits 0.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { httpRequest, waitFor } from '../harness/flow.js';

const main = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const example = fileURLToPath(new URL('../../examples/sluice.yaml', import.meta.url));

test('sluice start --demo serves the example: public route, the private one with the printed key, the admin API with the printed token', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
  const cfg = join(dir, 'sluice.yaml');
  writeFileSync(
    cfg,
    readFileSync(example, 'utf8')
      .replace('listen: { host: 0.0.0.0, port: 8080 }', 'listen: { host: 127.0.0.1, port: 0 }')
      .replace('admin: { host: 127.0.0.1, port: 9901 }', 'admin: { host: 127.0.0.1, port: 0 }'),
  );
  // tsx resolved here: the child runs in the temp dir, where a bare `tsx` would not resolve.
  const child = spawn(
    process.execPath,
    ['--import', import.meta.resolve('tsx'), main, 'start', '--demo', '--config', cfg],
    {
      cwd: dir, // the default data directory (./data/sluice) lands in the temp dir
      env: { ...process.env, DEMO_PORT: '0', DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const exited = once(child, 'exit');
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  try {
    const key = await waitFor(
      () => {
        if (gone) throw new Error(`sluice exited early:\n${err}`);
        return /x-api-key: (sk_[A-Za-z0-9_-]+)/.exec(err)?.[1];
      },
      'the demo key',
      60_000,
    );
    const port = await waitFor(
      () => /"public":"127\.0\.0\.1:(\d+)"/.exec(out)?.[1],
      'the started line',
      5000,
    );
    const url = `http://127.0.0.1:${port}`;
    assert.equal((await httpRequest(`${url}/public/hello`)).status, 200);
    const anon = await httpRequest(`${url}/private/hello`);
    assert.equal(anon.status, 401);
    const r = await httpRequest(`${url}/private/hello`, { headers: { 'x-api-key': key } });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /"x-sluice-tenant":\s*"demo"/);
    assert.ok(!out.includes(key.split('_')[2]!), 'the key secret is not in the JSON log');

    // The admin token, used exactly as printed: the variables to export, then curl or the CLI.
    const exports = Object.fromEntries(
      [...err.matchAll(/^ {2}export (SLUICE_ADMIN_[A-Z]+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]),
    );
    const token = exports.SLUICE_ADMIN_TOKEN;
    assert.ok(token !== undefined && token.length >= 32, `a printed admin token:\n${err}`);
    const adminUrl = exports.SLUICE_ADMIN_URL;
    assert.ok(
      adminUrl !== undefined,
      'the admin listener is not on the default port here, so its URL is printed',
    );
    assert.match(err, /curl -H "authorization: Bearer \$SLUICE_ADMIN_TOKEN" (\S+)\/admin\/v1\/tenants/);
    const tenants = await httpRequest(`${adminUrl}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(tenants.status, 200, tenants.text);
    assert.deepEqual(
      (JSON.parse(tenants.text) as { tenants: { id: string }[] }).tenants.map((t) => t.id),
      ['demo'],
    );
    const wrong = await httpRequest(`${adminUrl}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` },
    });
    assert.equal(wrong.status, 401, wrong.text);
    assert.equal((await httpRequest(`${adminUrl}/admin/v1/tenants`)).status, 401);
    const cli = await promisify(execFile)(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), main, 'tenants', 'list'],
      { env: { ...process.env, ...exports } },
    );
    assert.match(cli.stdout, /^demo\s+Demo tenant\b/m);
    assert.ok(!out.includes(token), 'the admin token is not in the JSON log');
  } finally {
    if (!gone) child.kill('SIGTERM');
    const [code] = await exited;
    assert.equal(code, 0, err);
  }
});
