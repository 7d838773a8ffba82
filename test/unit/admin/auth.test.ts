/**
 * Bootstrap tokens (SLUICE_ADMIN_TOKEN, SLUICE_ADMIN_TOKENS): which token is whose, that every
 * other token (wrong, empty, a prefix, longer, of another size) matches nobody and never throws
 * (the compare is over fixed-size digests), and that malformed entries are refused naming the
 * entry by position and name, never by its token.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BootstrapTokens } from '../../../src/admin/auth.js';

const OPS = 'ops-token-0123456789abcdef';
const SEC = 'sec-token-fedcba9876543210';
const ROOT = 'root-token-only-from-SLUICE_ADMIN_TOKEN';

const tokens = BootstrapTokens.fromEnv({
  SLUICE_ADMIN_TOKEN: ROOT,
  SLUICE_ADMIN_TOKENS: ` ops:operator:${OPS} , sec.team@corp:security:${SEC}`,
});

test('each token matches its own entry: name, one role, via token', () => {
  assert.equal(tokens.size, 3);
  assert.deepEqual(tokens.match(OPS), { name: 'ops', roles: ['operator'], via: 'token' });
  assert.deepEqual(tokens.match(SEC), { name: 'sec.team@corp', roles: ['security'], via: 'token' });
  assert.deepEqual(tokens.match(ROOT), { name: 'admin', roles: ['admin'], via: 'token' });
});

test('anything else matches nobody, whatever its size, and never throws', () => {
  for (const t of [
    '',
    ' ',
    OPS.slice(0, -1),
    `${OPS}x`,
    OPS.toUpperCase(),
    ` ${OPS}`,
    'x',
    'y'.repeat(10_000),
    `ops:operator:${OPS}`,
    `${OPS},${SEC}`,
  ])
    assert.equal(tokens.match(t), undefined, JSON.stringify(t.slice(0, 40)));
});

test('with nothing configured there are no entries, and not even the empty token matches', () => {
  for (const env of [{}, { SLUICE_ADMIN_TOKEN: '', SLUICE_ADMIN_TOKENS: '  ' }]) {
    const none = BootstrapTokens.fromEnv(env);
    assert.equal(none.size, 0);
    assert.equal(none.match(''), undefined);
    assert.equal(none.match('anything'), undefined);
  }
});

test('malformed entries are refused by position and name, never quoting the token', () => {
  const secret = 'SECRET-abcdefghijklmnop';
  const cases: [string, RegExp][] = [
    [`ops-operator-${secret}`, /^SLUICE_ADMIN_TOKENS entry 1: expected name:role:token$/],
    [`ok:viewer:${OPS},ops:operator`, /^SLUICE_ADMIN_TOKENS entry 2: expected name:role:token$/],
    [`has space:viewer:${secret}`, /^SLUICE_ADMIN_TOKENS entry 1: name must be 1-64 letters/],
    [`:viewer:${secret}`, /^SLUICE_ADMIN_TOKENS entry 1: name must be/],
    [`${'n'.repeat(65)}:viewer:${secret}`, /^SLUICE_ADMIN_TOKENS entry 1: name must be/],
    [
      `ops:root:${secret}`,
      /^SLUICE_ADMIN_TOKENS entry 1 \(ops\): unknown role "root" \(roles: viewer, operator, security, auditor, admin\)$/,
    ],
    [
      'ops:operator:SECRET-short',
      /^SLUICE_ADMIN_TOKENS entry 1 \(ops\): the token must be at least 16 characters$/,
    ],
    [`a:viewer:${OPS},a:admin:${SEC}`, /^SLUICE_ADMIN_TOKENS entry 2: the name "a" is used twice$/],
    [
      `a:viewer:${secret},b:admin:${secret}`,
      /^SLUICE_ADMIN_TOKENS entry 2 \(b\): the same token is given to two entries$/,
    ],
  ];
  for (const [list, message] of cases) {
    assert.throws(
      () => BootstrapTokens.fromEnv({ SLUICE_ADMIN_TOKENS: list }),
      (err: Error) => {
        assert.match(err.message, message);
        assert.doesNotMatch(err.message, /SECRET/);
        return true;
      },
      list,
    );
  }
});

test('a token of exactly 16 characters is enough; a name of 64 too', () => {
  const t = BootstrapTokens.fromEnv({ SLUICE_ADMIN_TOKENS: `${'n'.repeat(64)}:auditor:${'t'.repeat(16)}` });
  assert.deepEqual(t.match('t'.repeat(16))?.roles, ['auditor']);
});
