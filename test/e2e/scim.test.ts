/**
 * The SCIM 2.0 service as Entra ID and Okta drive it, over HTTP against a real gateway (embedded
 * store): discovery, the validation probe (a filter on a random userName), create user, find by
 * filter, create group with members, PATCH add member, PATCH active "False", PUT, DELETE; filters,
 * paging, SCIM errors, ETags; the wrong token refused; the token never in the logs; every change
 * in the admin change log with actor `scim`.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ROLE_TOKENS, roleTokensEnv } from '../harness/admin.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';

const TOKEN = 'scim-provisioning-secret-0123456789abcdef';
const USER = 'urn:ietf:params:scim:schemas:core:2.0:User';
const GROUP = 'urn:ietf:params:scim:schemas:core:2.0:Group';
const PATCH = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';
const ENTERPRISE = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';

let g: TestGateway;

interface Res {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function scim(
  method: string,
  path: string,
  body?: unknown,
  opts: { token?: string; headers?: Record<string, string> } = {},
): Promise<Res> {
  const res = await fetch(`${g.adminUrl}/scim/v2${path}`, {
    method,
    headers: {
      authorization: `Bearer ${opts.token ?? TOKEN}`,
      ...(body === undefined ? {} : { 'content-type': 'application/scim+json' }),
      ...opts.headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (text.length > 0) assert.match(res.headers.get('content-type') ?? '', /^application\/scim\+json/);
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
  };
}

const q = (filter: string) => `?filter=${encodeURIComponent(filter)}`;
const ids = (r: Res) => (r.body.Resources as { id: string }[]).map((x) => x.id);

before(async () => {
  g = await startGateway(
    {
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [],
      store: 'memory://',
      admin: {
        host: '127.0.0.1',
        port: 0,
        scim: { token: '${SLUICE_SCIM_TOKEN}', groupRoles: { Ops: ['operator'] } },
      },
    },
    { env: { SLUICE_SCIM_TOKEN: TOKEN, SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '' } },
  );
});
after(async () => {
  await g?.stop();
});

const newUser = (userName: string, extra: Record<string, unknown> = {}) => ({
  schemas: [USER, ENTERPRISE],
  userName,
  externalId: `ext-${userName}`,
  name: { givenName: userName.split('@')[0], familyName: 'Tester' },
  displayName: `${userName} display`,
  emails: [{ value: userName, type: 'work', primary: true }],
  active: true,
  [ENTERPRISE]: { department: 'Platform' },
  ...extra,
});

test('discovery: ServiceProviderConfig, ResourceTypes, Schemas', async () => {
  const spc = await scim('GET', '/ServiceProviderConfig');
  assert.equal(spc.status, 200);
  assert.deepEqual(spc.body.patch, { supported: true });
  assert.deepEqual(spc.body.bulk, { supported: false, maxOperations: 0, maxPayloadSize: 0 });
  assert.equal((spc.body.filter as { supported: boolean }).supported, true);
  assert.equal((spc.body.etag as { supported: boolean }).supported, true);
  const rt = await scim('GET', '/ResourceTypes');
  assert.deepEqual(
    (rt.body.Resources as { id: string; endpoint: string }[]).map((r) => [r.id, r.endpoint]),
    [
      ['User', '/Users'],
      ['Group', '/Groups'],
    ],
  );
  const s = await scim('GET', `/Schemas/${USER}`);
  assert.equal(s.status, 200);
  assert.ok((s.body.attributes as { name: string }[]).some((a) => a.name === 'userName'));
  assert.equal((await scim('GET', '/Schemas/urn:nope')).status, 404);
});

test('the Entra/Okta flow: probe, create, find, group with members, PATCH, deactivate, PUT, DELETE', async () => {
  // Entra ID's connection test: a filter on a userName that does not exist answers an empty list.
  const probe = await scim('GET', `/Users${q('userName eq "00000000-probe"')}`);
  assert.equal(probe.status, 200);
  assert.deepEqual(probe.body.schemas, ['urn:ietf:params:scim:api:messages:2.0:ListResponse']);
  assert.equal(probe.body.totalResults, 0);

  const created = await scim('POST', '/Users', { ...newUser('ada@example.com'), password: 'never-kept-0' });
  assert.equal(created.status, 201);
  const ada = created.body as {
    id: string;
    meta: Record<string, string>;
    active: boolean;
    password?: string;
  };
  assert.match(ada.id, /^[0-9a-f-]{36}$/);
  assert.equal(ada.password, undefined, 'a password is neither kept nor shown');
  assert.equal(ada.meta.resourceType, 'User');
  assert.equal(ada.meta.version, 'W/"1"');
  assert.equal(created.headers.get('etag'), 'W/"1"');
  assert.equal(ada.meta.location, `${g.adminUrl}/scim/v2/Users/${ada.id}`);
  assert.equal(created.headers.get('location'), ada.meta.location);
  assert.ok(Date.parse(ada.meta.created ?? '') > 0 && ada.meta.created === ada.meta.lastModified);
  assert.equal((created.body[ENTERPRISE] as { department: string }).department, 'Platform');

  // userName is unique, without case.
  const dup = await scim('POST', '/Users', newUser('ADA@example.com'));
  assert.equal(dup.status, 409);
  assert.deepEqual(dup.body.schemas, [ERROR]);
  assert.equal(dup.body.status, '409');
  assert.equal(dup.body.scimType, 'uniqueness');

  const found = await scim('GET', `/Users${q('userName eq "Ada@Example.com"')}`);
  assert.deepEqual(ids(found), [ada.id]);
  assert.deepEqual(ids(await scim('GET', `/Users${q('externalId eq "ext-ada@example.com"')}`)), [ada.id]);
  assert.deepEqual(ids(await scim('GET', `/Users${q(`id eq "${ada.id}"`)}`)), [ada.id]);

  const bob = (await scim('POST', '/Users', newUser('bob@example.com'))).body as { id: string };
  const grp = await scim('POST', '/Groups', {
    schemas: [GROUP],
    displayName: 'Ops',
    members: [{ value: ada.id }],
  });
  assert.equal(grp.status, 201);
  const ops = grp.body as { id: string; members: { value: string; display: string }[] };
  assert.deepEqual(
    ops.members.map((m) => m.value),
    [ada.id],
  );
  assert.equal(ops.members[0]?.display, 'ada@example.com display');
  assert.equal((await scim('POST', '/Groups', { schemas: [GROUP], displayName: 'ops' })).status, 409);

  // Entra ID adds a member with op "Add" (capitalised), path members.
  const add = await scim('PATCH', `/Groups/${ops.id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Add', path: 'members', value: [{ value: bob.id }] }],
  });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  assert.deepEqual(
    (add.body.members as { value: string }[]).map((m) => m.value).sort(),
    [ada.id, bob.id].sort(),
  );
  assert.equal((add.body.meta as { version: string }).version, 'W/"2"');
  // Entra ID's membership probe.
  const member = await scim(
    'GET',
    `/Groups${q(`id eq "${ops.id}" and members[value eq "${bob.id}"]`)}&excludedAttributes=members`,
  );
  assert.deepEqual(ids(member), [ops.id]);
  assert.equal((member.body.Resources as Record<string, unknown>[])[0]?.members, undefined);
  // The user shows its groups.
  const adaNow = await scim('GET', `/Users/${ada.id}`);
  assert.deepEqual(adaNow.body.groups, [
    { value: ops.id, display: 'Ops', $ref: `${g.adminUrl}/scim/v2/Groups/${ops.id}`, type: 'direct' },
  ]);

  // Okta removes a member with a path filter.
  const rm = await scim('PATCH', `/Groups/${ops.id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'remove', path: `members[value eq "${bob.id}"]` }],
  });
  assert.deepEqual(
    (rm.body.members as { value: string }[]).map((m) => m.value),
    [ada.id],
  );
  // Entra ID removes with a value list; removing what is not there changes nothing.
  const rm2 = await scim('PATCH', `/Groups/${ops.id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Remove', path: 'members', value: [{ value: bob.id }] }],
  });
  assert.equal(rm2.status, 200);
  assert.equal((rm2.body.members as unknown[]).length, 1);

  // Entra ID deactivates with the string "False"; Okta with a value object without a path.
  const off = await scim('PATCH', `/Users/${ada.id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Replace', path: 'active', value: 'False' }],
  });
  assert.equal(off.status, 200, JSON.stringify(off.body));
  assert.equal(off.body.active, false);
  const on = await scim('PATCH', `/Users/${ada.id}`, {
    schemas: [PATCH],
    Operations: [
      {
        op: 'replace',
        value: { active: true, 'name.givenName': 'Augusta', [`${ENTERPRISE}:department`]: 'SRE' },
      },
    ],
  });
  assert.equal(on.body.active, true);
  assert.equal((on.body.name as { givenName: string }).givenName, 'Augusta');
  assert.equal((on.body[ENTERPRISE] as { department: string }).department, 'SRE');
  // An email of a type not there yet is created (Entra ID).
  const mail = await scim('PATCH', `/Users/${ada.id}`, {
    schemas: [PATCH],
    Operations: [{ op: 'Add', path: 'emails[type eq "home"].value', value: 'ada@home.example' }],
  });
  assert.deepEqual(
    (mail.body.emails as { type: string; value: string }[]).map((e) => [e.type, e.value]),
    [
      ['work', 'ada@example.com'],
      ['home', 'ada@home.example'],
    ],
  );

  // PUT replaces the whole user; a stale If-Match is refused.
  const version = (mail.body.meta as { version: string }).version;
  const stale = await scim('PUT', `/Users/${ada.id}`, newUser('ada@example.com'), {
    headers: { 'if-match': 'W/"1"' },
  });
  assert.equal(stale.status, 412);
  const put = await scim(
    'PUT',
    `/Users/${ada.id}`,
    newUser('ada@example.com', { displayName: 'Ada L.', emails: [] }),
    {
      headers: { 'if-match': version },
    },
  );
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.displayName, 'Ada L.');
  assert.deepEqual(put.body.emails, []);

  assert.equal((await scim('DELETE', `/Users/${bob.id}`)).status, 204);
  const gone = await scim('GET', `/Users/${bob.id}`);
  assert.equal(gone.status, 404);
  assert.deepEqual(gone.body.schemas, [ERROR]);
  assert.equal(gone.body.status, '404');
  assert.equal((await scim('DELETE', `/Groups/${ops.id}`)).status, 204);
  assert.equal((await scim('GET', `/Groups/${ops.id}`)).status, 404);

  // Every change is an admin change of actor scim.
  const log = await fetch(`${g.adminUrl}/admin/v1/changes?limit=100`, {
    headers: { authorization: `Bearer ${ROLE_TOKENS.auditor}` },
  });
  const changes = (
    (await log.json()) as { changes: { actor: string; role: string; action: string; target: string }[] }
  ).changes
    .filter((c) => c.action.startsWith('scim.'))
    .reverse();
  assert.ok(changes.every((c) => c.actor === 'scim' && c.role === 'scim'));
  assert.deepEqual(
    changes.map((c) => c.action),
    [
      'scim.user.create',
      'scim.user.create',
      'scim.group.create',
      'scim.group.update',
      'scim.group.update',
      'scim.group.update',
      'scim.user.update',
      'scim.user.update',
      'scim.user.update',
      'scim.user.update',
      'scim.user.delete',
      'scim.group.delete',
    ],
  );
  assert.ok(changes.some((c) => c.target === `scim-user:${ada.id}`));
});

test('filters: and, or, not, pr, sw, co, ew, valuePath; bad filters are invalidFilter', async () => {
  const made: string[] = [];
  for (const n of ['flt-anna@corp.test', 'flt-anton@corp.test', 'flt-zoe@other.test'])
    made.push(
      (
        (await scim('POST', '/Users', newUser(n, { title: n.startsWith('flt-an') ? 'SRE' : undefined })))
          .body as { id: string }
      ).id,
    );
  const [anna, anton, zoe] = made;
  const f = async (filter: string) =>
    ids(await scim('GET', `/Users${q(filter)}`)).filter((id) => made.includes(id));
  assert.deepEqual(await f('userName sw "flt-an"'), [anna, anton]);
  assert.deepEqual(await f('userName co "ZOE"'), [zoe]);
  assert.deepEqual(await f('userName ew "@corp.test" and title pr'), [anna, anton]);
  assert.deepEqual(await f('userName eq "flt-anna@corp.test" or userName eq "flt-zoe@other.test"'), [
    anna,
    zoe,
  ]);
  assert.deepEqual(await f('userName sw "flt-" and not (title pr)'), [zoe]);
  assert.deepEqual(await f('emails[type eq "work" and value co "other"]'), [zoe]);
  assert.deepEqual(await f('displayName eq "flt-anton@corp.test display"'), [anton]);
  assert.deepEqual(await f('USERNAME Eq "flt-anna@corp.test"'), [anna], 'names and operators without case');
  assert.deepEqual(await f('meta.created gt "2000-01-01T00:00:00Z" and userName sw "flt-"'), [
    anna,
    anton,
    zoe,
  ]);
  for (const bad of [
    'userName',
    'userName eq',
    'userName xx "a"',
    'userName eq "a" and',
    '(userName eq "a"',
    'userName eq unquoted',
  ]) {
    const r = await scim('GET', `/Users${q(bad)}`);
    assert.equal(r.status, 400, bad);
    assert.equal(r.body.scimType, 'invalidFilter', bad);
  }
});

test('paging: startIndex (1-based) and count', async () => {
  for (let i = 0; i < 5; i++) await scim('POST', '/Users', newUser(`page-${i}@corp.test`));
  const filter = q('userName sw "page-"');
  const p1 = await scim('GET', `/Users${filter}&startIndex=1&count=2`);
  assert.equal(p1.body.totalResults, 5);
  assert.equal(p1.body.startIndex, 1);
  assert.equal(p1.body.itemsPerPage, 2);
  const p3 = await scim('GET', `/Users${filter}&startIndex=5&count=2`);
  assert.equal(p3.body.itemsPerPage, 1);
  assert.equal((p3.body.Resources as { userName: string }[])[0]?.userName, 'page-4@corp.test');
  const all = [...ids(p1), ...ids(await scim('GET', `/Users${filter}&startIndex=3&count=2`)), ...ids(p3)];
  assert.equal(new Set(all).size, 5);
  const none = await scim('GET', `/Users${filter}&count=0`);
  assert.equal(none.body.totalResults, 5);
  assert.deepEqual(none.body.Resources, []);
  const attrs = await scim('GET', `/Users${filter}&count=1&attributes=userName`);
  assert.deepEqual(Object.keys((attrs.body.Resources as Record<string, unknown>[])[0] ?? {}).sort(), [
    'id',
    'schemas',
    'userName',
  ]);
});

test('errors: bad JSON, missing userName, unknown member, read-only path, bad op, no target', async () => {
  const bad = await fetch(`${g.adminUrl}/scim/v2/Users`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/scim+json' },
    body: '{"userName":',
  });
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { scimType: string }).scimType, 'invalidSyntax');
  const noName = await scim('POST', '/Users', { schemas: [USER], displayName: 'x' });
  assert.equal(noName.status, 400);
  assert.equal(noName.body.scimType, 'invalidValue');
  const ghost = await scim('POST', '/Groups', {
    schemas: [GROUP],
    displayName: 'Ghosts',
    members: [{ value: 'nobody' }],
  });
  assert.equal(ghost.status, 400);
  assert.equal(ghost.body.scimType, 'invalidValue');
  const u = (await scim('POST', '/Users', newUser('err@corp.test'))).body as { id: string };
  const cases: [unknown, number, string][] = [
    [{ schemas: [PATCH], Operations: [{ op: 'replace', path: 'id', value: 'x' }] }, 400, 'mutability'],
    [{ schemas: [PATCH], Operations: [{ op: 'move', path: 'title', value: 'x' }] }, 400, 'invalidSyntax'],
    [{ schemas: [PATCH], Operations: [{ op: 'remove' }] }, 400, 'noTarget'],
    [
      { schemas: [PATCH], Operations: [{ op: 'replace', path: 'emails[type eq "work"', value: 'x' }] },
      400,
      'invalidPath',
    ],
    [
      { schemas: [PATCH], Operations: [{ op: 'replace', path: 'active', value: 'maybe' }] },
      400,
      'invalidValue',
    ],
    [{ Operations: [{ op: 'replace', path: 'title', value: 'x' }] }, 400, 'invalidSyntax'],
  ];
  for (const [body, status, scimType] of cases) {
    const r = await scim('PATCH', `/Users/${u.id}`, body);
    assert.equal(r.status, status, JSON.stringify(body));
    assert.equal(r.body.scimType, scimType, JSON.stringify(body));
  }
  assert.equal(
    (
      await scim('PATCH', '/Users/nope', {
        schemas: [PATCH],
        Operations: [{ op: 'replace', path: 'title', value: 'x' }],
      })
    ).status,
    404,
  );
  assert.equal((await scim('GET', '/Nope')).status, 404);
});

test('the wrong token, an admin token or none is refused; the token never reaches the logs', async () => {
  for (const token of ['wrong-token', ROLE_TOKENS.admin, TOKEN.slice(0, -1)]) {
    const r = await scim('GET', '/Users', undefined, { token });
    assert.equal(r.status, 401);
    assert.deepEqual(r.body.schemas, [ERROR]);
    assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="sluice-scim"');
  }
  const none = await fetch(`${g.adminUrl}/scim/v2/Users`);
  assert.equal(none.status, 401);
  // Nor does the SCIM token open the admin API.
  const admin = await fetch(`${g.adminUrl}/admin/v1/tenants`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(admin.status, 401);
  // SCIM stays out of the admin OpenAPI document (it has its own token, not an admin role).
  const doc = (await (await fetch(`${g.adminUrl}/openapi.json`)).json()) as {
    paths: Record<string, unknown>;
  };
  assert.ok(Object.keys(doc.paths).every((p) => !p.startsWith('/scim')));
  // Nor does the admin API show it: the config source holds ${SLUICE_SCIM_TOKEN}, not the value.
  const config = await fetch(`${g.adminUrl}/admin/v1/config`, {
    headers: { authorization: `Bearer ${ROLE_TOKENS.admin}` },
  });
  assert.equal(config.status, 200);
  const configText = await config.text();
  assert.ok(configText.includes('SLUICE_SCIM_TOKEN') && !configText.includes(TOKEN));
  assert.ok(!g.logText().includes(TOKEN), 'the SCIM token is never logged');
  assert.ok(!g.logText().includes(TOKEN.slice(0, 20)));
});
