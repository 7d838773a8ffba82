/**
 * The admin server (Fastify) on its own, over HTTP on loopback: built from an AdminHost whose
 * runtime is a compiled config and whose tenancy is a real repository on an embedded store (PGlite),
 * with one bootstrap token per role. What it says here: the onRequest hook refuses before anything
 * of the request is read (401 with a Bearer challenge, 403 naming the permission, the handler never
 * run), bad bodies and queries answer 400 SLUICE-ADMIN-005 listing where and what, the
 * repository's errors map to their codes, and changes are announced with who made them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { ReloadResult } from '../../../src/admin/host.js';
import { AdminServer } from '../../../src/admin/server.js';
import { compileRuntime, disposeRuntime, type Runtime } from '../../../src/config/compile.js';
import { loadConfigText } from '../../../src/config/load.js';
import { migrate } from '../../../src/store/migrate.js';
import { EventBus, type GatewayEvent } from '../../../src/telemetry/events.js';
import { Metrics } from '../../../src/telemetry/metrics.js';
import { TenancyRepository } from '../../../src/tenancy/repository.js';
import { PoolRegistry } from '../../../src/upstreams/pools.js';
import {
  type AdminResponse,
  adminCall,
  type CallOptions,
  ROLE_TOKENS,
  roleTokensEnv,
} from '../../harness/admin.js';
import { type TestStores, testStores } from '../../harness/postgres.js';

interface Problem {
  code: string;
  status: number;
  detail?: string;
  permission?: string;
  errors?: { in: string; path: string; message: string }[];
}

/** An admin server on `host`, listening on a free loopback port. */
async function startAdmin(host: ConstructorParameters<typeof AdminServer>[0]) {
  const server = new AdminServer(host, { SLUICE_ADMIN_TOKENS: roleTokensEnv() });
  const addr = await server.listen('127.0.0.1', 0);
  const url = `http://127.0.0.1:${addr.port}`;
  return { server, call: (method: string, path: string, o?: CallOptions) => adminCall(url, method, path, o) };
}

function problemOf(r: AdminResponse, status: number, code: string): Problem {
  assert.equal(r.status, status, r.text);
  assert.equal(r.contentType, 'application/problem+json');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const p = r.body as Problem;
  assert.equal(p.code, code);
  assert.equal(p.status, status);
  return p;
}

const pools = new PoolRegistry();
const metrics = new Metrics(false);
const { config } = loadConfigText(
  'listen: { host: 127.0.0.1, port: 0 }\nupstreams:\n  up: { targets: [ { url: "http://127.0.0.1:9" } ] }\nroutes:\n  - { name: all, match: { path: { prefix: / } }, upstream: up }\n',
  'admin-test.yaml',
  {},
);
const runtime: Runtime = compileRuntime(config, { source: '', file: 'admin-test.yaml' }, { pools, metrics });
const logger = pino({ level: 'silent' });

let stores: TestStores;
let repo: TenancyRepository;
let admin: Awaited<ReturnType<typeof startAdmin>>;
let noStore: Awaited<ReturnType<typeof startAdmin>>;
const events: GatewayEvent[] = [];
let reloads = 0;

function host(tenancy: TenancyRepository | undefined): ConstructorParameters<typeof AdminServer>[0] {
  const bus = new EventBus();
  bus.on((e) => events.push(e));
  return {
    runtime,
    ready: true,
    draining: false,
    acceptingTraffic: true,
    metrics,
    logger,
    events: bus,
    tenancy,
    releases: undefined,
    flags: undefined,
    usageRows: () => undefined,
    lifetimeValue: () => undefined,
    reload: (): ReloadResult => {
      reloads++;
      return { result: 'unchanged', version: runtime.version };
    },
  };
}

before(async () => {
  stores = await testStores('pglite');
  const store = await stores.open();
  await migrate(store);
  repo = new TenancyRepository(store);
  admin = await startAdmin(host(repo));
  noStore = await startAdmin(host(undefined));
});
after(async () => {
  await admin.server.close();
  await noStore.server.close();
  await stores.close();
  disposeRuntime(runtime);
  await pools.closeAll();
});

describe('who may call', () => {
  test('no, empty, other-scheme or unknown credentials: 401 SLUICE-ADMIN-001 with a Bearer challenge', async () => {
    const cases: (Record<string, string> | undefined)[] = [
      undefined,
      { authorization: 'Bearer ' },
      { authorization: `Basic ${Buffer.from(`x:${ROLE_TOKENS.admin}`).toString('base64')}` },
      { authorization: `Bearer ${ROLE_TOKENS.admin.slice(0, -1)}` },
      { authorization: `Bearer ${ROLE_TOKENS.admin}0` },
      { authorization: 'Bearer x' },
    ];
    for (const headers of cases) {
      const r = await admin.call('GET', '/admin/v1/tenants', { headers });
      problemOf(r, 401, 'SLUICE-ADMIN-001');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="sluice-admin"');
    }
  });

  test('a role without the permission: 403 SLUICE-ADMIN-003 naming it, and the handler never runs', async () => {
    const before = reloads;
    const p = problemOf(
      await admin.call('POST', '/admin/v1/config/reload', { role: 'viewer' }),
      403,
      'SLUICE-ADMIN-003',
    );
    assert.equal(p.permission, 'config.reload');
    assert.equal(p.detail, 'viewer lacks config.reload');
    problemOf(
      await admin.call('POST', '/admin/v1/config/reload', { role: 'security' }),
      403,
      'SLUICE-ADMIN-003',
    );
    assert.equal(reloads, before, 'no reload was made');
    const ok = await admin.call('POST', '/admin/v1/config/reload', { role: 'operator' });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { result: 'unchanged', version: runtime.version });
    assert.equal(reloads, before + 1);
  });

  test('the role is checked before the body is read: a forbidden caller gets 403 even for a bad body', async () => {
    const r = await admin.call('POST', '/admin/v1/tenants', { role: 'auditor', body: '{not json' });
    assert.equal(problemOf(r, 403, 'SLUICE-ADMIN-003').permission, 'tenants.write');
    const t = await admin.call('DELETE', '/admin/v1/tenants/whatever', { role: 'operator' });
    assert.equal(problemOf(t, 403, 'SLUICE-ADMIN-003').permission, 'tenants.delete');
  });

  test('unknown /admin paths: 401 without credentials, 404 SLUICE-ADMIN-002 with them; others 404 openly; health is public', async () => {
    problemOf(await admin.call('GET', '/admin/v1/nothing-here'), 401, 'SLUICE-ADMIN-001');
    problemOf(await admin.call('GET', '/admin/v1/nothing-here', { role: 'viewer' }), 404, 'SLUICE-ADMIN-002');
    problemOf(await admin.call('GET', '/elsewhere'), 404, 'SLUICE-ADMIN-002');
    const live = await admin.call('GET', '/health/live');
    assert.equal(live.status, 200);
    assert.deepEqual(live.body, { status: 'live' });
  });
});

describe('what a request must look like: 400 SLUICE-ADMIN-005 with each error located', () => {
  const cases: [string, unknown, { in: string; path: string; message: string }][] = [
    [
      'a missing field',
      { id: 'acme' },
      { in: 'body', path: '/', message: "must have required property 'name'" },
    ],
    ['a wrong type', { id: 'acme', name: 5 }, { in: 'body', path: '/name', message: 'must be string' }],
    [
      'an unknown field',
      { id: 'acme', name: 'A', colour: 'red' },
      { in: 'body', path: '/', message: 'must NOT have additional properties' },
    ],
    [
      'an id off its pattern',
      { id: 'Not An Id', name: 'A' },
      { in: 'body', path: '/id', message: 'must match pattern "^[a-z0-9][a-z0-9-]{0,62}$"' },
    ],
  ];
  for (const [what, body, error] of cases)
    test(what, async () => {
      const p = problemOf(
        await admin.call('POST', '/admin/v1/tenants', { role: 'operator', body }),
        400,
        'SLUICE-ADMIN-005',
      );
      assert.deepEqual(p.errors, [error]);
    });

  test('malformed JSON: 400 SLUICE-ADMIN-005', async () => {
    problemOf(
      await admin.call('POST', '/admin/v1/tenants', { role: 'operator', body: '{"id":' }),
      400,
      'SLUICE-ADMIN-005',
    );
  });

  test('a query parameter is checked after coercion, and located in the querystring', async () => {
    const p = problemOf(
      await admin.call('GET', '/admin/v1/changes?limit=0', { role: 'auditor' }),
      400,
      'SLUICE-ADMIN-005',
    );
    assert.deepEqual(p.errors, [{ in: 'querystring', path: '/limit', message: 'must be >= 1' }]);
    assert.equal((await admin.call('GET', '/admin/v1/changes?limit=2', { role: 'auditor' })).status, 200);
  });

  test('nothing was created by any of the refused requests', async () => {
    const r = await admin.call('GET', '/admin/v1/tenants/acme', { role: 'viewer' });
    problemOf(r, 404, 'SLUICE-ADMIN-006');
  });
});

describe('tenants and keys on the repository', () => {
  test('create: 201 with its location, announced with the actor and role; again: 409 SLUICE-ADMIN-007', async () => {
    const from = events.length;
    const r = await admin.call('POST', '/admin/v1/tenants', {
      role: 'operator',
      body: { id: 'acme', name: 'Acme' },
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('location'), '/admin/v1/tenants/acme');
    const t = r.body as { id: string; name: string; status: string; region: string | null };
    assert.deepEqual([t.id, t.name, t.status, t.region], ['acme', 'Acme', 'active', null]);
    const e = events.slice(from);
    assert.equal(e.length, 1);
    assert.deepEqual(
      { ...e[0], at: undefined, after: undefined },
      {
        type: 'admin_change',
        at: undefined,
        actor: 'operator-user',
        role: 'operator',
        action: 'tenant.create',
        target: 'tenant:acme',
        before: null,
        after: undefined,
      },
    );
    problemOf(
      await admin.call('POST', '/admin/v1/tenants', { role: 'admin', body: { id: 'acme', name: 'Again' } }),
      409,
      'SLUICE-ADMIN-007',
    );
  });

  test('a tenant that does not exist: 404 SLUICE-ADMIN-006 on read, change and delete', async () => {
    problemOf(
      await admin.call('GET', '/admin/v1/tenants/ghost', { role: 'viewer' }),
      404,
      'SLUICE-ADMIN-006',
    );
    problemOf(
      await admin.call('PATCH', '/admin/v1/tenants/ghost', { role: 'operator', body: { plan: 'gold' } }),
      404,
      'SLUICE-ADMIN-006',
    );
    problemOf(
      await admin.call('DELETE', '/admin/v1/tenants/ghost', { role: 'admin' }),
      404,
      'SLUICE-ADMIN-006',
    );
    problemOf(
      await admin.call('GET', '/admin/v1/tenants/ghost/keys', { role: 'viewer' }),
      404,
      'SLUICE-ADMIN-006',
    );
  });

  test('an empty patch is refused; a real one answers the changed tenant', async () => {
    problemOf(
      await admin.call('PATCH', '/admin/v1/tenants/acme', { role: 'operator', body: {} }),
      400,
      'SLUICE-ADMIN-005',
    );
    const r = await admin.call('PATCH', '/admin/v1/tenants/acme', {
      role: 'operator',
      body: { plan: 'gold' },
    });
    assert.equal(r.status, 200);
    assert.equal((r.body as { plan: string }).plan, 'gold');
  });

  test('a key: its secret once, not cached; the list shows metadata only; past expiry and foreign paths refused', async () => {
    const made = await admin.call('POST', '/admin/v1/tenants/acme/keys', {
      role: 'security',
      body: { name: 'ci' },
    });
    assert.equal(made.status, 201);
    assert.equal(made.headers.get('cache-control'), 'no-store');
    assert.equal(made.headers.get('pragma'), 'no-cache');
    const { key, secret } = made.body as { key: { id: string; status: string }; secret: string };
    assert.match(secret, /^sk_[a-z2-7]{12}_[A-Za-z0-9]{43}$/);
    assert.equal(key.status, 'active');
    const list = await admin.call('GET', '/admin/v1/tenants/acme/keys', { role: 'viewer' });
    assert.equal(list.status, 200);
    assert.ok(!list.text.includes(secret.slice(16)), 'the secret is never listed');
    assert.doesNotMatch(list.text, /hash/i);
    const past = await admin.call('POST', '/admin/v1/tenants/acme/keys', {
      role: 'security',
      body: { name: 'old', expiresAt: '2000-01-01T00:00:00Z' },
    });
    assert.equal(problemOf(past, 400, 'SLUICE-ADMIN-005').detail, 'expiresAt must be in the future');
    await admin.call('POST', '/admin/v1/tenants', { role: 'operator', body: { id: 'other', name: 'Other' } });
    problemOf(
      await admin.call('DELETE', `/admin/v1/tenants/other/keys/${key.id}`, { role: 'security' }),
      404,
      'SLUICE-ADMIN-006',
    );
    const revoked = await admin.call('DELETE', `/admin/v1/tenants/acme/keys/${key.id}`, { role: 'security' });
    assert.equal(revoked.status, 200);
    assert.equal((revoked.body as { status: string }).status, 'revoked');
  });
});

test('without a store, tenant, key and change endpoints answer 503 SLUICE-ADMIN-004; the rest still works', async () => {
  for (const [method, path] of [
    ['GET', '/admin/v1/tenants'],
    ['GET', '/admin/v1/tenants/acme'],
    ['GET', '/admin/v1/tenants/acme/keys'],
    ['GET', '/admin/v1/changes'],
  ] as const)
    problemOf(await noStore.call(method, path, { role: 'admin' }), 503, 'SLUICE-ADMIN-004');
  const v = await noStore.call('GET', '/admin/v1/version', { role: 'viewer' });
  assert.equal(v.status, 200);
});
