/**
 * `sluice tenants` and `sluice keys` as an operator runs them: real CLI processes against a live
 * gateway's admin API, text and --json output, exit codes, token from the environment or a file.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type AdminGateway, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { type CliResult, eventually, httpRequest, runCli } from '../harness/flow.js';
import { refusedOrigin } from '../harness/ports.js';

let a: AdminGateway;
before(async () => {
  a = await startAdminGateway();
});
after(() => a?.stop());

/**
 * The command to its exit, with the admin token in the environment. A child still running at the
 * bound is killed and reported with a null code (runCli), never as an exit code, so "exits 1"
 * can only pass for a process that exited by itself with 1.
 */
const sluice = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> =>
  runCli(args, { env: { SLUICE_ADMIN_TOKEN: ROLE_TOKENS.admin, SLUICE_ADMIN_URL: '', ...env } });

const at = () => ['--admin-url', a.g.adminUrl];

test('tenants and keys from create to revoke, in text and JSON', async () => {
  const created = await sluice([
    'tenants',
    'create',
    'acme',
    '--name',
    'Acme Corp',
    '--region',
    'eu',
    '--label',
    'tier=gold',
    ...at(),
  ]);
  assert.equal(created.code, 0, created.err);
  assert.match(created.out, /^id: +acme$/m);
  assert.match(created.out, /^status: +active$/m);
  assert.match(created.out, /^labels: +tier=gold$/m);

  const list = await sluice(['tenants', 'list', ...at()]);
  assert.equal(list.code, 0, list.err);
  const [header, row] = list.out.trimEnd().split('\n');
  assert.match(header!, /^ID +NAME +STATUS +REGION +PLAN +CREATED$/);
  assert.match(row!, /^acme +Acme Corp +active +eu +- +\d{4}-/);

  // A key, in JSON: the secret is there this once; the note goes to stderr, not into the JSON.
  const key = await sluice([
    'keys',
    'create',
    'acme',
    '--name',
    'ci',
    '--scope',
    'read',
    '--expires',
    '30d',
    '--json',
    ...at(),
  ]);
  assert.equal(key.code, 0, key.err);
  const k = JSON.parse(key.out) as {
    key: { id: string; expiresAt: string; scopes: string[] };
    secret: string;
  };
  assert.deepEqual(k.key.scopes, ['read']);
  const days = (Date.parse(k.key.expiresAt) - Date.now()) / 86_400_000;
  assert.ok(days > 29.9 && days <= 30, `expires in ${days} days`);
  await eventually(
    async () =>
      (await httpRequest(`${a.g.url}/keyed/x`, { headers: { 'x-api-key': k.secret } })).status === 200,
    'the key works on the data plane',
    15_000,
  );

  const keys = await sluice(['keys', 'list', 'acme', ...at()]);
  assert.equal(keys.code, 0, keys.err);
  assert.match(keys.out, new RegExp(`^${k.key.id} +ci +sk_\\S+ +read +active `, 'm'));
  assert.ok(!keys.out.includes(k.secret));

  const suspended = await sluice(['tenants', 'suspend', 'acme', ...at()]);
  assert.match(suspended.out, /^status: +suspended$/m);
  const got = await sluice(['tenants', 'get', 'acme', '--json', ...at()]);
  assert.equal((JSON.parse(got.out) as { status: string }).status, 'suspended');
  assert.match((await sluice(['tenants', 'resume', 'acme', ...at()])).out, /^status: +active$/m);

  const revoked = await sluice(['keys', 'revoke', 'acme', k.key.id, ...at()]);
  assert.equal(revoked.code, 0, revoked.err);
  assert.match(revoked.out, new RegExp(`revoked key ${k.key.id} \\(ci\\) of tenant acme`));
  await eventually(
    async () =>
      (await httpRequest(`${a.g.url}/keyed/x`, { headers: { 'x-api-key': k.secret } })).status === 401,
    'the revoked key is refused',
    15_000,
  );

  const deleted = await sluice(['tenants', 'delete', 'acme', ...at()]);
  assert.equal(deleted.code, 0, deleted.err);
  const gone = await sluice(['tenants', 'get', 'acme', ...at()]);
  assert.equal(gone.code, 1);
  assert.match(gone.err, /404 SLUICE-ADMIN-006/);
});

test('the token comes from --token-file or SLUICE_ADMIN_TOKEN; refusals exit 1 with the problem code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  const file = join(dir, 'token');
  writeFileSync(file, `${ROLE_TOKENS.viewer}\n`);
  // A viewer may list, not create. (Independent calls run side by side: each is a process start.)
  const [listed, refused, wrong, none] = await Promise.all([
    sluice(['tenants', 'list', '--token-file', file, ...at()], { SLUICE_ADMIN_TOKEN: '' }),
    sluice(['tenants', 'create', 'x', '--name', 'X', '--token-file', file, ...at()]),
    sluice(['tenants', 'list', ...at()], { SLUICE_ADMIN_TOKEN: 'not-the-token-at-all' }),
    sluice(['tenants', 'list', ...at()], { SLUICE_ADMIN_TOKEN: '' }),
  ]);
  assert.equal(listed.code, 0, listed.err);
  assert.equal(refused.code, 1);
  assert.match(refused.err, /403 SLUICE-ADMIN-003 Role lacks permission: viewer lacks tenants\.write/);

  assert.equal(wrong.code, 1);
  assert.match(wrong.err, /401 SLUICE-ADMIN-001/);

  assert.equal(none.code, 2);
  assert.match(none.err, /no admin token: set SLUICE_ADMIN_TOKEN or pass --token-file/);
});

test('usage mistakes exit 2 with help; an unreachable admin API exits 1', async () => {
  // A port held bound and never listening: refused every time, and no other process is given it.
  const dead = refusedOrigin();
  const [noName, unknown, help, down] = await Promise.all([
    sluice(['tenants', 'create', 'x', ...at()]),
    sluice(['keys', 'rotate', ...at()]),
    sluice(['keys', '--help']),
    sluice(['tenants', 'list', '--admin-url', dead.origin]),
  ]).finally(() => dead.close());
  assert.equal(noName.code, 2);
  assert.match(noName.err, /--name is required/);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown subcommand "rotate"/);
  assert.equal(help.code, 0);
  assert.match(help.out, /Usage: sluice keys/);
  assert.equal(down.code, 1);
  assert.match(down.err, new RegExp(`cannot reach the admin API at ${dead.origin}: ECONNREFUSED`));
});
