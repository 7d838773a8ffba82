/**
 * OIDC tokens for the admin API, from a real provider (oidc-provider): roles from the token's
 * `sluice_roles` claim, the principal's name recorded as the actor, and every kind of bad token
 * refused with 401 before any role is looked at.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AdminServer } from '../../src/admin/server.js';
import { type AdminGateway, adminCall, startAdminGateway } from '../harness/admin.js';
import { startGateway } from '../harness/gateway.js';
import { CLIENT_ID, DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../harness/oidc.js';

const ADMIN_AUDIENCE = 'https://admin.sluice.test';

let a: AdminGateway;
let idp: OidcProvider;
let server: AdminServer;
let url: string;

before(async () => {
  idp = await startOidcProvider();
  a = await startAdminGateway();
  // A second admin server on the same gateway, given the settings `admin.auth` and `identity.issuers`
  // would give (the last test goes through the config file), so one gateway serves both listeners.
  server = new AdminServer(
    a.g.gw,
    { SLUICE_ADMIN_TOKEN: '' },
    {
      auth: {
        auth: { issuer: 'corp', audience: ADMIN_AUDIENCE },
        issuers: {
          corp: { issuer: idp.issuer, audiences: [DEFAULT_AUDIENCE], algorithms: ['RS256', 'ES256'] },
        },
      },
    },
  );
  url = `http://127.0.0.1:${(await server.listen('127.0.0.1', 0)).port}`;
});
after(async () => {
  await server?.close();
  await a?.stop();
  await idp?.close();
});

const token = (roles: unknown, opts: { alg?: 'RS256' | 'ES256'; audience?: string } = {}) =>
  idp.issueToken({
    audience: opts.audience ?? ADMIN_AUDIENCE,
    alg: opts.alg,
    claims: { sluice_roles: roles },
  });

test('roles come from the sluice_roles claim (a list or a space-separated string); unknown names grant nothing', async () => {
  const security = await token(['security']);
  const r = await adminCall(url, 'POST', '/admin/v1/tenants', {
    token: security,
    body: { id: 'oidc-roles', name: 'A' },
  });
  assert.equal(r.status, 403, 'security may not create tenants');
  assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-003');

  const both = await token('viewer operator', { alg: 'ES256' });
  const c = await adminCall(url, 'POST', '/admin/v1/tenants', {
    token: both,
    body: { id: 'oidc-roles', name: 'A' },
  });
  assert.equal(c.status, 201, c.text);

  const none = await token(['superuser', 'root']);
  const n = await adminCall(url, 'GET', '/admin/v1/config', { token: none });
  assert.equal(n.status, 403);
  assert.match((n.body as { detail: string }).detail, /no role lacks config\.read/);

  assert.equal(
    (await adminCall(url, 'GET', '/admin/v1/config', { token: await token(['viewer']) })).status,
    200,
  );
});

test('the token subject is the actor of the change, with the role that granted it', async () => {
  // A tenant of its own (made with a bootstrap token), so the test does not need another's.
  const made = await a.call('POST', '/admin/v1/tenants', {
    role: 'admin',
    body: { id: 'oidc-actor', name: 'A' },
  });
  assert.equal(made.status, 201, made.text);
  const ops = await token(['operator', 'admin']);
  const p = await adminCall(url, 'PATCH', '/admin/v1/tenants/oidc-actor', {
    token: ops,
    body: { plan: 'gold' },
  });
  assert.equal(p.status, 200, p.text);
  const log = await a.call('GET', '/admin/v1/changes?limit=1', { role: 'auditor' });
  const [last] = (log.body as { changes: { actor: string; role: string; action: string; target: string }[] })
    .changes;
  assert.equal(last!.action, 'tenant.update');
  assert.equal(last!.target, 'tenant:oidc-actor');
  // oidc-provider's client_credentials tokens name the client.
  assert.equal(last!.actor, CLIENT_ID);
  assert.equal(last!.role, 'operator', 'the least powerful role that grants the permission');
});

test('bad tokens are refused with 401 SLUICE-ADMIN-001 whatever roles they claim', async () => {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: idp.issuer, aud: ADMIN_AUDIENCE, sub: 'mallory', sluice_roles: ['admin'] };
  // A tenant of its own that every bad token tries to delete.
  const made = await a.call('POST', '/admin/v1/tenants', {
    role: 'admin',
    body: { id: 'oidc-bad-tokens', name: 'B' },
  });
  assert.equal(made.status, 201, made.text);
  const good = await token(['admin']);
  const [h, , s] = good.split('.');
  const cases: [string, string][] = [
    ['audience of the data plane, not the admin API', await token(['admin'], { audience: DEFAULT_AUDIENCE })],
    ['expired', await idp.sign({ ...claims, iat: now - 3600, exp: now - 600 })],
    ['another issuer', await idp.sign({ ...claims, iss: 'http://127.0.0.1:1', exp: now + 300 })],
    [
      'tampered payload',
      `${h}.${Buffer.from(JSON.stringify({ ...claims, exp: now + 300 })).toString('base64url')}.${s}`,
    ],
    [
      'alg none',
      `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, exp: now + 300 })).toString('base64url')}.`,
    ],
    ['garbage', 'not.a.jwt'],
  ];
  for (const [what, t] of cases) {
    const r = await adminCall(url, 'DELETE', '/admin/v1/tenants/oidc-bad-tokens', { token: t });
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-001', what);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="sluice-admin"', what);
  }
  assert.equal(
    (await a.call('GET', '/admin/v1/tenants/oidc-bad-tokens', { role: 'viewer' })).status,
    200,
    'still there',
  );
});

test('admin.auth naming an issuer that is not configured stops the start', () => {
  assert.throws(
    () => new AdminServer(a.g.gw, {}, { auth: { auth: { issuer: 'nobody' }, issuers: {} } }),
    /admin\.auth\.issuer: "nobody" is not an issuer of identity\.issuers/,
  );
});

test("admin.auth in the config file: the gateway's own admin listener accepts the provider's tokens", async () => {
  const g = await startGateway(
    {
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [],
      identity: { issuers: { corp: { issuer: idp.issuer, audiences: [DEFAULT_AUDIENCE] } } },
      admin: {
        host: '127.0.0.1',
        port: 0,
        auth: { issuer: 'corp', audience: ADMIN_AUDIENCE, rolesClaim: 'realm.roles' },
      },
    },
    { env: { SLUICE_ADMIN_TOKEN: '', SLUICE_ADMIN_TOKENS: '' } },
  );
  try {
    const viewer = await idp.issueToken({
      audience: ADMIN_AUDIENCE,
      claims: { realm: { roles: ['viewer'] } },
    });
    assert.equal((await adminCall(g.adminUrl, 'GET', '/admin/v1/version', { token: viewer })).status, 200);
    assert.equal(
      (await adminCall(g.adminUrl, 'POST', '/admin/v1/config/reload', { token: viewer })).status,
      403,
    );
    // The flat claim is not where this config looks for roles.
    const flat = await idp.issueToken({ audience: ADMIN_AUDIENCE, claims: { sluice_roles: ['admin'] } });
    assert.equal((await adminCall(g.adminUrl, 'GET', '/admin/v1/version', { token: flat })).status, 403);
  } finally {
    await g.stop();
  }
});
