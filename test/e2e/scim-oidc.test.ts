/**
 * SCIM provisioning decides who may use the admin API with an OIDC token (a real provider,
 * oidc-provider): a provisioned user in group Ops gets the operator role's permissions; removing
 * the membership, deactivating or deleting the user refuses the very next call; a subject nobody
 * provisioned is refused whatever roles its token claims. Two gateways share one PostgreSQL: a
 * change made through one is enforced by the other at once (no cache, no notification wait).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { adminCall, ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../harness/oidc.js';
import { type TestDatabase, testDatabase } from '../harness/postgres.js';

const ADMIN_AUDIENCE = 'https://admin.sluice.test';
const SCIM_TOKEN = 'scim-oidc-provisioning-secret-0123456789';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

let idp: OidcProvider;
let db: TestDatabase;
let g1: TestGateway;
let g2: TestGateway;

async function gateway(): Promise<TestGateway> {
  return startGateway(
    {
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [],
      store: db.url,
      identity: { issuers: { corp: { issuer: idp.issuer, audiences: [DEFAULT_AUDIENCE] } } },
      admin: {
        host: '127.0.0.1',
        port: 0,
        auth: { issuer: 'corp', audience: ADMIN_AUDIENCE },
        scim: {
          token: '${SLUICE_SCIM_TOKEN}',
          groupRoles: { 'Sluice Operators': ['operator'], 'Sluice Auditors': ['auditor'] },
          match: { claim: 'preferred_username', attribute: 'userName' },
        },
      },
    },
    { env: { SLUICE_SCIM_TOKEN: SCIM_TOKEN, SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' } },
  );
}

before(async () => {
  idp = await startOidcProvider();
  db = await testDatabase();
  g1 = await gateway();
  g2 = await gateway();
});
after(async () => {
  await g1?.stop();
  await g2?.stop();
  await idp?.close();
  await db?.drop();
});

async function scim(g: TestGateway, method: string, path: string, body?: unknown) {
  const r = await adminCall(g.adminUrl, method, `/scim/v2${path}`, {
    token: SCIM_TOKEN,
    body,
    headers: body === undefined ? {} : { 'content-type': 'application/scim+json' },
  });
  return r as typeof r & { body: Record<string, unknown> };
}

/** A client_credentials token whose preferred_username names the operator; sluice_roles claims admin (ignored under SCIM). */
const tokenFor = (username: string) =>
  idp.issueToken({
    audience: ADMIN_AUDIENCE,
    claims: { preferred_username: username, sluice_roles: ['admin'] },
  });

test('group membership gives the mapped role; removal, deactivation and deletion refuse the next call on both gateways', async () => {
  const user = await scim(g1, 'POST', '/Users', {
    schemas: [USER],
    userName: 'Grace@Corp.Test',
    active: true,
  });
  assert.equal(user.status, 201, user.text);
  const userId = user.body.id as string;
  const token = await tokenFor('grace@corp.test');

  // Provisioned, in no group: authenticated, but no role.
  const noRole = await adminCall(g2.adminUrl, 'GET', '/admin/v1/tenants', { token });
  assert.equal(noRole.status, 403, noRole.text);

  const grp = await scim(g2, 'POST', '/Groups', {
    schemas: [GROUP],
    displayName: 'Sluice Operators',
    members: [{ value: userId }],
  });
  assert.equal(grp.status, 201, grp.text);
  const groupId = grp.body.id as string;

  // Operator's permissions, on both gateways, at once: create a tenant (tenants.write)...
  const made = await adminCall(g1.adminUrl, 'POST', '/admin/v1/tenants', {
    token,
    body: { id: 'scim-made', name: 'M' },
  });
  assert.equal(made.status, 201, made.text);
  assert.equal((await adminCall(g2.adminUrl, 'GET', '/admin/v1/tenants/scim-made', { token })).status, 200);
  // ...but not what operator lacks, whatever the token's sluice_roles claim says.
  const del = await adminCall(g2.adminUrl, 'DELETE', '/admin/v1/tenants/scim-made', { token });
  assert.equal(del.status, 403, del.text);
  assert.equal((await adminCall(g1.adminUrl, 'GET', '/admin/v1/changes', { token })).status, 403);
  // The actor recorded is the provisioned userName, with the role that granted it.
  const log = await adminCall(g1.adminUrl, 'GET', '/admin/v1/changes?limit=20', {
    token: ROLE_TOKENS.auditor,
  });
  const changes = (log.body as { changes: { actor: string; role: string; action: string }[] }).changes;
  const create = changes.find((c) => c.action === 'tenant.create');
  assert.deepEqual([create?.actor, create?.role], ['Grace@Corp.Test', 'operator']);
  assert.ok(changes.some((c) => c.action === 'scim.group.create' && c.actor === 'scim'));

  // Removing the membership (through g1) refuses the very next call (on g2): no role left.
  const rm = await scim(g1, 'PATCH', `/Groups/${groupId}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Remove', path: `members[value eq "${userId}"]` }],
  });
  assert.equal(rm.status, 200, rm.text);
  const afterRm = await adminCall(g2.adminUrl, 'POST', '/admin/v1/tenants', {
    token,
    body: { id: 'scim-no', name: 'N' },
  });
  assert.equal(afterRm.status, 403, afterRm.text);

  // Back in the group, then deactivated the Entra way: 401 on the next call, on both.
  await scim(g2, 'PATCH', `/Groups/${groupId}`, {
    schemas: [PATCH],
    Operations: [{ op: 'add', path: 'members', value: [{ value: userId }] }],
  });
  assert.equal((await adminCall(g1.adminUrl, 'GET', '/admin/v1/tenants', { token })).status, 200);
  const off = await scim(g2, 'PATCH', `/Users/${userId}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
  });
  assert.equal(off.status, 200, off.text);
  for (const g of [g1, g2]) {
    const r = await adminCall(g.adminUrl, 'GET', '/admin/v1/tenants', { token });
    assert.equal(r.status, 401, r.text);
    assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-001');
    assert.match((r.body as { detail: string }).detail, /not active/);
  }

  // Reactivated, then deleted: refused again.
  await scim(g1, 'PATCH', `/Users/${userId}`, {
    schemas: [PATCH],
    Operations: [{ op: 'replace', value: { active: true } }],
  });
  assert.equal((await adminCall(g2.adminUrl, 'GET', '/admin/v1/tenants', { token })).status, 200);
  assert.equal((await scim(g1, 'DELETE', `/Users/${userId}`)).status, 204);
  const gone = await adminCall(g2.adminUrl, 'GET', '/admin/v1/tenants', { token });
  assert.equal(gone.status, 401, gone.text);
  assert.match((gone.body as { detail: string }).detail, /no provisioned user/);
});

test('a subject nobody provisioned, or a token without the claim, is refused; bootstrap tokens still work', async () => {
  const stranger = await tokenFor('mallory@corp.test');
  const r = await adminCall(g1.adminUrl, 'GET', '/admin/v1/version', { token: stranger });
  assert.equal(r.status, 401, r.text);
  assert.equal((r.body as { code: string }).code, 'SLUICE-ADMIN-001');
  const noClaim = await idp.issueToken({ audience: ADMIN_AUDIENCE, claims: { sluice_roles: ['admin'] } });
  const n = await adminCall(g2.adminUrl, 'GET', '/admin/v1/version', { token: noClaim });
  assert.equal(n.status, 401);
  assert.match((n.body as { detail: string }).detail, /preferred_username/);
  assert.equal((await adminCall(g1.adminUrl, 'GET', '/admin/v1/version', { role: 'viewer' })).status, 200);
});

test('auditor group: its members read the change log, and only that', async () => {
  const u = await scim(g2, 'POST', '/Users', { schemas: [USER], userName: 'ida@corp.test' });
  await scim(g1, 'POST', '/Groups', {
    schemas: [GROUP],
    displayName: 'sluice auditors',
    members: [{ value: u.body.id }],
  });
  const token = await tokenFor('IDA@corp.test');
  assert.equal((await adminCall(g1.adminUrl, 'GET', '/admin/v1/changes', { token })).status, 200);
  assert.equal((await adminCall(g2.adminUrl, 'POST', '/admin/v1/config/reload', { token })).status, 403);
});
