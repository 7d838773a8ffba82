/**
 * The role matrix of the admin API: every role against every endpoint, over real HTTP, on a gateway
 * with a real (embedded) store. The expectation is written out here by hand, independently of
 * src/admin/roles.ts; a second test derives it from roles.ts and the served OpenAPI document, so a
 * wrong matrix, an endpoint missing from this table, or a role check that does not match the
 * document fails.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import {
  PERMISSIONS,
  permissionMatrixMarkdown,
  ROLE_PERMISSIONS,
  ROLES,
  type Role,
} from '../../src/admin/roles.js';
import { ReleaseAdminService } from '../../src/delivery/releases/service.js';
import { type ReleaseStateName, ReleaseStore } from '../../src/delivery/releases/store.js';
import { type AdminGateway, startAdminGateway } from '../harness/admin.js';
import { STORE_KINDS, testDatabase } from '../harness/postgres.js';

const ALL: Role[] = ['viewer', 'operator', 'security', 'auditor', 'admin'];

interface Case {
  method: string;
  path: string;
  /** Who may call it: written out by hand. */
  roles: Role[];
  /** Status when allowed. */
  status: number;
  body?: () => unknown;
  /** Needs a fresh tenant (`:id`), and a key of it (`:keyId`); or a fresh flag (`:key`). */
  needs?: 'tenant' | 'key' | 'flag';
  /** Needs a fresh release (`:name`) in this state. */
  release?: ReleaseStateName;
}

let seq = 0;
const EXPECTED: Case[] = [
  { method: 'GET', path: '/admin/v1/config', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/version', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/upstreams', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/routes', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/console/session', roles: ALL, status: 200 },
  // One tick, then the stream ends (without `ticks` it lasts).
  { method: 'GET', path: '/admin/v1/console/stream?ticks=1', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/console/routes?q=&offset=0&limit=10', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/console/groups?limit=10', roles: ALL, status: 200 },
  { method: 'POST', path: '/admin/v1/config/reload', roles: ['operator', 'admin'], status: 200 },
  { method: 'GET', path: '/admin/v1/tenants', roles: ALL, status: 200 },
  {
    method: 'POST',
    path: '/admin/v1/tenants',
    roles: ['operator', 'admin'],
    status: 201,
    body: () => ({ id: `new-${++seq}`, name: 'New' }),
  },
  { method: 'GET', path: '/admin/v1/tenants/:id', roles: ALL, status: 200, needs: 'tenant' },
  {
    method: 'PATCH',
    path: '/admin/v1/tenants/:id',
    roles: ['operator', 'admin'],
    status: 200,
    needs: 'tenant',
    body: () => ({ plan: 'gold' }),
  },
  { method: 'DELETE', path: '/admin/v1/tenants/:id', roles: ['admin'], status: 204, needs: 'tenant' },
  {
    method: 'POST',
    path: '/admin/v1/tenants/:id/suspend',
    roles: ['security', 'admin'],
    status: 200,
    needs: 'tenant',
  },
  {
    method: 'POST',
    path: '/admin/v1/tenants/:id/resume',
    roles: ['security', 'admin'],
    status: 200,
    needs: 'tenant',
  },
  { method: 'GET', path: '/admin/v1/tenants/:id/keys', roles: ALL, status: 200, needs: 'tenant' },
  {
    method: 'POST',
    path: '/admin/v1/tenants/:id/keys',
    roles: ['security', 'admin'],
    status: 201,
    needs: 'tenant',
    body: () => ({ name: 'ci', scopes: ['read'] }),
  },
  {
    method: 'DELETE',
    path: '/admin/v1/tenants/:id/keys/:keyId',
    roles: ['security', 'admin'],
    status: 200,
    needs: 'key',
  },
  { method: 'GET', path: '/admin/v1/changes', roles: ['security', 'auditor', 'admin'], status: 200 },
  // The audit log is off in this gateway: the roles that may read it get 503, the others 403.
  { method: 'GET', path: '/admin/v1/audit/checkpoints', roles: ['auditor', 'admin'], status: 503 },
  { method: 'GET', path: '/admin/v1/audit/export', roles: ['auditor', 'admin'], status: 503 },
  { method: 'GET', path: '/admin/v1/audit/dead-letters', roles: ['auditor', 'admin'], status: 503 },
  { method: 'GET', path: '/admin/v1/audit/checkpoints/latest', roles: ['auditor', 'admin'], status: 503 },
  {
    method: 'POST',
    path: '/admin/v1/audit/dead-letters/replay',
    roles: ['admin'],
    status: 503,
    body: () => ({}),
  },
  {
    method: 'GET',
    path: '/admin/v1/audit/subjects/:subject/export',
    roles: ['auditor', 'admin'],
    status: 503,
  },
  { method: 'POST', path: '/admin/v1/audit/subjects/:subject/erase', roles: ['admin'], status: 503 },
  { method: 'GET', path: '/admin/v1/audit/entries', roles: ['auditor', 'admin'], status: 503 },
  { method: 'GET', path: '/admin/v1/audit/status', roles: ['auditor', 'admin'], status: 503 },
  { method: 'GET', path: '/admin/v1/config/reloads', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/slo', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/anomalies', roles: ALL, status: 200 },
  // The tenant export works with the log off (its audit part is null).
  {
    method: 'GET',
    path: '/admin/v1/tenants/:id/export',
    roles: ['auditor', 'admin'],
    status: 200,
    needs: 'tenant',
  },
  { method: 'GET', path: '/admin/v1/audit/proof/inclusion', roles: ['auditor', 'admin'], status: 503 },
  {
    method: 'GET',
    path: '/admin/v1/audit/proof/consistency',
    roles: ['auditor', 'admin'],
    status: 503,
  },
  { method: 'GET', path: '/admin/v1/tenants/:id/usage', roles: ALL, status: 200, needs: 'tenant' },
  { method: 'GET', path: '/admin/v1/releases', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/releases/:name', roles: ALL, status: 200, release: 'running' },
  { method: 'GET', path: '/admin/v1/releases/:name/history', roles: ALL, status: 200, release: 'running' },
  {
    method: 'POST',
    path: '/admin/v1/releases/:name/start',
    roles: ['operator', 'admin'],
    status: 200,
    release: 'pending',
  },
  {
    method: 'POST',
    path: '/admin/v1/releases/:name/pause',
    roles: ['operator', 'admin'],
    status: 200,
    release: 'running',
  },
  {
    method: 'POST',
    path: '/admin/v1/releases/:name/resume',
    roles: ['operator', 'admin'],
    status: 200,
    release: 'paused',
  },
  {
    method: 'POST',
    path: '/admin/v1/releases/:name/promote',
    roles: ['operator', 'admin'],
    status: 200,
    release: 'running',
  },
  {
    method: 'POST',
    path: '/admin/v1/releases/:name/abort',
    roles: ['operator', 'admin'],
    status: 200,
    release: 'running',
  },
  { method: 'GET', path: '/admin/v1/flags', roles: ALL, status: 200 },
  { method: 'GET', path: '/admin/v1/flags/:key', roles: ALL, status: 200, needs: 'flag' },
  {
    method: 'PUT',
    path: '/admin/v1/flags/:key',
    roles: ['operator', 'admin'],
    status: 200,
    needs: 'flag',
    body: () => ({ enabled: true, variants: { on: true, off: false }, defaultVariant: 'on' }),
  },
  {
    method: 'DELETE',
    path: '/admin/v1/flags/:key',
    roles: ['operator', 'admin'],
    status: 204,
    needs: 'flag',
  },
  { method: 'GET', path: '/admin/v1/flags/:key/history', roles: ALL, status: 200, needs: 'flag' },
];

/** Open to everyone, no credentials. */
const PUBLIC = [
  '/health/live',
  '/health/ready',
  '/metrics',
  '/openapi.json',
  '/admin/v1/console/login-options',
];

const openapiPath = (p: string) => p.replace(/\?.*$/, '').replace(/:([A-Za-z]+)/g, '{$1}');

// On both stores: what an allowed call does (and answers) comes from the store.
for (const kind of STORE_KINDS)
  describe(`admin API role matrix (${kind})`, () => {
    let a: AdminGateway;
    let releases: ReleaseStore;
    let drop: (() => Promise<void>) | undefined;
    before(async () => {
      let store = 'memory://';
      if (kind === 'postgres') {
        const db = await testDatabase();
        store = db.url;
        drop = db.drop;
      }
      a = await startAdminGateway({ store });
      releases = new ReleaseStore(a.g.gw.identity!.store);
      // The config declares no release: the fixtures below write release rows into the gateway's store.
      a.g.gw.releases ??= new ReleaseAdminService(releases, () => new Map(), 4);
    });
    after(async () => {
      await a?.stop();
      await drop?.();
    });

    async function fixture(c: Case): Promise<string> {
      if (c.release) {
        const name = `fx-${++seq}`;
        const spec = {
          route: 'open',
          candidate: 'up',
          start: c.release === 'pending' ? 'manual' : 'auto',
        } as const;
        assert.equal(await releases.ensure(name, spec, 'hash', 'v1', 10), true);
        if (c.release === 'paused') {
          const row = (await releases.get(name))!;
          const t = {
            state: 'paused',
            event: { actor: 'fixture', action: 'pause', reason: 'fixture' },
          } as const;
          assert.ok(await releases.transition(name, row.revision, t));
        }
        return c.path.replace(':name', name);
      }
      if (!c.needs) return c.path.replace(':subject', encodeURIComponent('ip:192.0.2.1'));
      const id = `fx-${++seq}`;
      if (c.needs === 'flag') {
        const f = await a.call('PUT', `/admin/v1/flags/${id}`, {
          role: 'admin',
          body: { enabled: true, variants: { on: true, off: false }, defaultVariant: 'off' },
        });
        assert.equal(f.status, 201, f.text);
        return c.path.replace(':key', id);
      }
      const t = await a.call('POST', '/admin/v1/tenants', { role: 'admin', body: { id, name: 'Fixture' } });
      assert.equal(t.status, 201, t.text);
      let path = c.path.replace(':id', id);
      if (c.needs === 'key') {
        const k = await a.call('POST', `/admin/v1/tenants/${id}/keys`, {
          role: 'admin',
          body: { name: 'k' },
        });
        assert.equal(k.status, 201, k.text);
        path = path.replace(':keyId', (k.body as { key: { id: string } }).key.id);
      }
      return path;
    }

    test('every role against every endpoint: allowed calls succeed, the rest get 403 SLUICE-ADMIN-003', async () => {
      for (const c of EXPECTED) {
        for (const role of ROLES) {
          const path = await fixture(c);
          const r = await a.call(c.method, path, { role, body: c.body?.() });
          const what = `${role} ${c.method} ${c.path}`;
          if (c.roles.includes(role)) {
            assert.equal(r.status, c.status, `${what}: ${r.text}`);
          } else {
            assert.equal(r.status, 403, `${what}: ${r.text}`);
            assert.equal(r.contentType, 'application/problem+json', what);
            const p = r.body as { code: string; permission: string };
            assert.equal(p.code, 'SLUICE-ADMIN-003', what);
            assert.ok(p.permission in PERMISSIONS, what);
            // A refused change changed nothing.
            if (c.needs === 'flag') {
              const f = await a.call('GET', path, { role: 'admin' });
              assert.equal(f.status, 200, `${what}: the flag is still there`);
              assert.equal((f.body as { revision: number }).revision, 1, what);
            } else if (c.needs) {
              const id = path.split('/')[4]!;
              const t = await a.call('GET', `/admin/v1/tenants/${id}`, { role: 'admin' });
              assert.equal(t.status, 200, `${what}: the tenant is still there`);
              assert.equal((t.body as { status: string }).status, 'active', what);
              assert.equal((t.body as { plan: unknown }).plan, null, what);
            }
            if (c.release) {
              const r = await a.call('GET', path.split('/').slice(0, 5).join('/'), { role: 'admin' });
              assert.equal(
                (r.body as { state: string }).state,
                c.release,
                `${what}: the release did not move`,
              );
            }
          }
        }
      }
      // Only the roles that may change things appear in the change log, each under its own name.
      const log = await a.call('GET', '/admin/v1/changes?limit=500', { role: 'auditor' });
      assert.equal(log.status, 200);
      const actors = new Set(
        (log.body as { changes: { actor: string; role: string }[] }).changes.map((c) => c.actor),
      );
      assert.deepEqual([...actors].sort(), ['admin-user', 'operator-user', 'security-user']);
    });

    test('the matrix in roles.ts and the permissions in /openapi.json agree with the table above, endpoint by endpoint', async () => {
      const doc = (await a.call('GET', '/openapi.json')).body as {
        paths: Record<string, Record<string, { 'x-sluice-permission'?: string }>>;
      };
      const documented: string[] = [];
      for (const [path, ops] of Object.entries(doc.paths))
        for (const [method, op] of Object.entries(ops)) {
          const permission = op['x-sluice-permission'];
          if (permission === undefined) {
            assert.ok(PUBLIC.includes(path), `${method} ${path} has no permission but is not public`);
            continue;
          }
          documented.push(`${method.toUpperCase()} ${path}`);
          const c = EXPECTED.find((e) => e.method === method.toUpperCase() && openapiPath(e.path) === path);
          assert.ok(c, `${method.toUpperCase()} ${path} is missing from the expectation table`);
          const derived = ROLES.filter((r) =>
            (ROLE_PERMISSIONS[r] as readonly string[]).includes(permission),
          );
          assert.deepEqual(derived, c.roles, `${method.toUpperCase()} ${path} (${permission})`);
        }
      assert.deepEqual(
        documented.sort(),
        EXPECTED.map((e) => `${e.method} ${openapiPath(e.path)}`).sort(),
        'every endpoint of the table is in the document',
      );
    });

    test('health, metrics and the OpenAPI document need no credentials', async () => {
      for (const p of PUBLIC) {
        const r = await a.call('GET', p);
        assert.equal(r.status, 200, `${p}: ${r.text}`);
      }
    });

    test('docs/admin-api.md shows the matrix of roles.ts and documents every endpoint', () => {
      const doc = readFileSync(new URL('../../docs/admin-api.md', import.meta.url), 'utf8');
      const m = /<!-- permission-matrix:start -->\n([\s\S]*?)\n<!-- permission-matrix:end -->/.exec(doc);
      assert.ok(m, 'matrix markers');
      assert.equal(m[1], permissionMatrixMarkdown());
      for (const c of EXPECTED) {
        assert.ok(
          doc.includes(`| \`${c.method} ${openapiPath(c.path)}`),
          `${c.method} ${c.path} is not in the endpoint table`,
        );
      }
    });
  });
