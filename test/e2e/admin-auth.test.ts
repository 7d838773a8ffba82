/**
 * Authentication of the admin API with bootstrap tokens, and the guarantees the admin server gives
 * about its own routes: none without a permission, no response that its schema does not declare.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Type as T } from '@sinclair/typebox';
import { BootstrapTokens } from '../../src/admin/auth.js';
import { AdminServer } from '../../src/admin/server.js';
import { type AdminGateway, adminCall, ROLE_TOKENS, startAdminGateway } from '../harness/admin.js';
import { startGateway } from '../harness/gateway.js';

describe('bootstrap tokens', () => {
  let a: AdminGateway;
  const single = 'the-single-admin-token-from-SLUICE_ADMIN_TOKEN';
  before(async () => {
    a = await startAdminGateway({ env: { SLUICE_ADMIN_TOKEN: single } });
  });
  after(() => a?.stop());

  test('no, malformed or wrong credentials: 401 SLUICE-ADMIN-001 with a Bearer challenge', async () => {
    const cases: [string, Record<string, string>][] = [
      ['no header', {}],
      ['empty bearer', { authorization: 'Bearer ' }],
      ['wrong token', { authorization: 'Bearer not-a-token-anyone-has-0000' }],
      ['a role token with a suffix', { authorization: `Bearer ${ROLE_TOKENS.admin}x` }],
      ['a prefix of a role token', { authorization: `Bearer ${ROLE_TOKENS.admin.slice(0, -1)}` }],
      [
        'basic scheme',
        { authorization: `Basic ${Buffer.from(`admin:${ROLE_TOKENS.admin}`).toString('base64')}` },
      ],
      ['token without scheme', { authorization: ROLE_TOKENS.admin }],
    ];
    for (const [what, headers] of cases) {
      const r = await a.call('GET', '/admin/v1/config', { headers });
      assert.equal(r.status, 401, what);
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="sluice-admin"', what);
      assert.equal(r.contentType, 'application/problem+json', what);
      assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-001', what);
    }
    // The scheme is case-insensitive (RFC 9110 §11.1).
    const ok = await a.call('GET', '/admin/v1/config', {
      headers: { authorization: `bearer ${ROLE_TOKENS.viewer}` },
    });
    assert.equal(ok.status, 200);
  });

  test('unknown /admin paths: 401 without credentials, 404 SLUICE-ADMIN-002 with them; other paths 404 openly', async () => {
    assert.equal((await a.call('GET', '/admin/v1/nothing')).status, 401);
    const r = await a.call('GET', '/admin/v1/nothing', { role: 'viewer' });
    assert.equal(r.status, 404);
    assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-002');
    assert.equal((await a.call('GET', '/nothing')).status, 404);
  });

  test('SLUICE_ADMIN_TOKEN keeps working, as role admin, recorded as actor "admin"', async () => {
    const c = await a.call('POST', '/admin/v1/tenants', {
      token: single,
      body: { id: 'by-single', name: 'x' },
    });
    assert.equal(c.status, 201, c.text);
    const d = await a.call('DELETE', '/admin/v1/tenants/by-single', { token: single });
    assert.equal(d.status, 204, d.text);
    const log = await a.call('GET', '/admin/v1/changes', { role: 'auditor' });
    const changes = (
      log.body as { changes: { actor: string; role: string; action: string; target: string }[] }
    ).changes;
    assert.deepEqual(
      changes.filter((x) => x.target === 'tenant:by-single').map((x) => [x.actor, x.role, x.action]),
      [
        ['admin', 'admin', 'tenant.delete'],
        ['admin', 'admin', 'tenant.create'],
      ],
    );
  });

  test('no token ever reaches the log', async () => {
    await a.call('GET', '/admin/v1/config', { token: 'a-wrong-token-that-must-not-be-logged' });
    const text = a.g.logText();
    for (const t of [single, ...Object.values(ROLE_TOKENS), 'a-wrong-token-that-must-not-be-logged'])
      assert.ok(!text.includes(t), 'a token appears in the log');
  });
});

describe('bootstrap token configuration', () => {
  test('a malformed SLUICE_ADMIN_TOKENS is refused, naming the entry and never its token', () => {
    // The admin server reads the variable through this when the gateway starts, and a throw stops the start.
    const secret = 'a-long-enough-secret-token-42';
    const cases: [string, RegExp][] = [
      [`ops:root:${secret}`, /entry 1 \(ops\): unknown role "root"/],
      [`ops:viewer:${secret},${secret}`, /entry 2: expected name:role:token/],
      ['ops:viewer:short', /entry 1 \(ops\): the token must be at least 16 characters/],
      [`ops:viewer:${secret},ops:admin:${secret}-2`, /entry 2: the name "ops" is used twice/],
      [`ops:viewer:${secret},sec:admin:${secret}`, /entry 2 \(sec\): the same token is given to two entries/],
      [`bad name:viewer:${secret}`, /entry 1: name must be/],
    ];
    for (const [value, message] of cases) {
      assert.throws(
        () => BootstrapTokens.fromEnv({ SLUICE_ADMIN_TOKENS: value }),
        (err: Error) => {
          assert.match(err.message, message);
          assert.ok(!err.message.includes(secret), 'the token is in the error message');
          return true;
        },
      );
    }
    // Spaces around entries are fine; a token may contain ':'.
    const t = BootstrapTokens.fromEnv({
      SLUICE_ADMIN_TOKENS: ` ops:viewer:${secret} , sec:security:a:b:${secret} `,
    });
    assert.deepEqual(t.match(secret), { name: 'ops', roles: ['viewer'], via: 'token' });
    assert.deepEqual(t.match(`a:b:${secret}`), { name: 'sec', roles: ['security'], via: 'token' });
    assert.equal(t.match(`${secret} `), undefined);
  });

  test('with no token and no admin.auth, the admin API refuses everything; health and metrics stay open', async () => {
    const g = await startGateway(
      { upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } }, routes: [] },
      { env: { SLUICE_ADMIN_TOKENS: '', SLUICE_ADMIN_TOKEN: '' } },
    );
    try {
      const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/config', { token: '' });
      assert.equal(r.status, 401);
      assert.equal((await adminCall(g.adminUrl, 'GET', '/health/live')).status, 200);
      assert.equal((await adminCall(g.adminUrl, 'GET', '/metrics')).status, 200);
      assert.ok(g.logs.some((l) => /refuses every request/.test(String(l.msg))));
    } finally {
      await g.stop();
    }
  });
});

describe('what the admin server guarantees about its routes', () => {
  let a: AdminGateway;
  before(async () => {
    a = await startAdminGateway({ store: false });
  });
  after(() => a?.stop());

  test('a route that declares no permission (or an unknown one) stops the admin server from starting', async () => {
    for (const config of [{}, { permission: 'tenants.everything' }]) {
      const s = new AdminServer(
        a.g.gw,
        {},
        {
          routes: [
            (app) =>
              app.get('/admin/v1/forgotten', { config: config as object }, async () => ({ open: true })),
          ],
        },
      );
      await assert.rejects(
        s.listen('127.0.0.1', 0),
        /admin route GET \/admin\/v1\/forgotten declares no valid permission/,
      );
      await s.close();
    }
  });

  test('a response with a field its schema does not declare is refused (500), never sent', async () => {
    const s = new AdminServer(
      a.g.gw,
      { SLUICE_ADMIN_TOKEN: 'a-token-for-this-test-only' },
      {
        routes: [
          (app) =>
            app.get(
              '/admin/v1/leaky',
              {
                config: { permission: 'keys.read' },
                schema: { response: { 200: T.Object({ id: T.String() }, { additionalProperties: false }) } },
              },
              async () => ({ id: 'k1', secretHash: 'deadbeef-must-not-leave' }),
            ),
        ],
      },
    );
    const addr = await s.listen('127.0.0.1', 0);
    try {
      const r = await adminCall(`http://127.0.0.1:${addr.port}`, 'GET', '/admin/v1/leaky', {
        token: 'a-token-for-this-test-only',
      });
      assert.equal(r.status, 500);
      assert.equal((r.body as { code: string }).code, 'SLUICE-GW-001');
      assert.ok(!r.text.includes('deadbeef'));
    } finally {
      await s.close();
    }
  });

  test('tenant, key and change-log endpoints answer 503 SLUICE-ADMIN-004 without a store', async () => {
    for (const [method, path] of [
      ['GET', '/admin/v1/tenants'],
      ['GET', '/admin/v1/tenants/acme'],
      ['GET', '/admin/v1/tenants/acme/keys'],
      ['GET', '/admin/v1/changes'],
    ] as const) {
      const r = await a.call(method, path, { role: 'admin' });
      assert.equal(r.status, 503, path);
      assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-004', path);
    }
  });
});
