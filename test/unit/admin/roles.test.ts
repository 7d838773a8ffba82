/**
 * The role matrix of roles.ts, against an expectation written out here by hand: which role may do
 * what, that several roles grant the union of theirs, that no role grants nothing, and which strings
 * count as roles and permissions (own keys only: `toString` is no permission).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  allows,
  isPermission,
  isRole,
  PERMISSIONS,
  type Permission,
  ROLES,
  type Role,
} from '../../../src/admin/roles.js';

const READ = [
  'config.read',
  'health.read',
  'tenants.read',
  'keys.read',
  'usage.read',
  'releases.read',
  'flags.read',
] as const;
const EXPECTED: Record<Role, readonly string[]> = {
  viewer: [...READ],
  operator: [...READ, 'config.reload', 'tenants.write', 'releases.operate', 'flags.write'],
  security: [...READ, 'keys.write', 'tenants.suspend', 'changes.read'],
  auditor: [...READ, 'changes.read', 'audit.read', 'tenants.export'],
  admin: [
    ...READ,
    'config.reload',
    'tenants.write',
    'tenants.suspend',
    'tenants.delete',
    'keys.write',
    'changes.read',
    'releases.operate',
    'flags.write',
    'audit.read',
    'audit.operate',
    'audit.erase',
    'tenants.export',
  ],
};
const ALL_PERMISSIONS = EXPECTED.admin as readonly Permission[];

test('the roles are the five documented ones, in order of power as documented', () => {
  assert.deepEqual([...ROLES], ['viewer', 'operator', 'security', 'auditor', 'admin']);
});

test('the permissions are the ones this table names: a new one must be placed in it by hand', () => {
  assert.deepEqual(Object.keys(PERMISSIONS).sort(), [...ALL_PERMISSIONS].sort());
});

test('each role is granted exactly its permissions', () => {
  for (const role of Object.keys(EXPECTED) as Role[])
    for (const p of ALL_PERMISSIONS)
      assert.equal(allows([role], p), EXPECTED[role].includes(p), `${role} ${p}`);
});

test('the sharp edges: only admin deletes tenants; operator cannot touch keys or suspend; security cannot reload or edit tenants', () => {
  for (const r of ['viewer', 'operator', 'security', 'auditor'] as const)
    assert.equal(allows([r], 'tenants.delete'), false, r);
  for (const r of ['viewer', 'operator', 'security', 'auditor'] as const)
    assert.equal(allows([r], 'audit.erase'), false, r);
  assert.equal(allows(['operator'], 'keys.write'), false);
  assert.equal(allows(['operator'], 'tenants.suspend'), false);
  assert.equal(allows(['operator'], 'changes.read'), false);
  assert.equal(allows(['security'], 'config.reload'), false);
  assert.equal(allows(['security'], 'tenants.write'), false);
  assert.equal(allows(['auditor'], 'keys.write'), false);
  assert.equal(allows(['security'], 'releases.operate'), false);
  assert.equal(allows(['auditor'], 'flags.write'), false);
});

test('several roles grant the union of theirs; no role grants nothing', () => {
  assert.equal(allows(['operator', 'auditor'], 'changes.read'), true);
  assert.equal(allows(['operator', 'auditor'], 'tenants.write'), true);
  assert.equal(allows(['operator', 'auditor'], 'keys.write'), false);
  for (const p of ALL_PERMISSIONS) assert.equal(allows([], p), false, p);
});

test('roles and permissions are exact strings; inherited object keys are neither', () => {
  for (const r of ROLES) assert.equal(isRole(r), true);
  for (const s of ['Admin', 'admin ', '', 'root', 'none', 'toString']) assert.equal(isRole(s), false, s);
  for (const p of [...ALL_PERMISSIONS, 'public']) assert.equal(isPermission(p), true, p);
  for (const s of ['toString', '__proto__', 'constructor', 'config', 'config.write', 'PUBLIC', ''])
    assert.equal(isPermission(s), false, s);
});
