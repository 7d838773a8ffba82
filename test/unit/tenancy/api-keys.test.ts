/** API keys without a store: format, parsing, hashing, and lookupKey's verdicts on a snapshot. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { generateKey, KEY_LENGTH, parseKey, verifySecret } from '../../../src/tenancy/api-keys.js';
import {
  type KeyEntry,
  lookupKey,
  type TenancySnapshot,
  type TenantEntry,
} from '../../../src/tenancy/snapshot.js';

test('generated keys: sk_<12 base32>_<43 base62>, the prefix is the public part, the hash is SHA-256 of the secret', () => {
  const k = generateKey();
  assert.match(k.plaintext, /^sk_[a-z2-7]{12}_[A-Za-z0-9]{43}$/);
  assert.equal(k.plaintext.length, KEY_LENGTH);
  assert.equal(k.prefix, `sk_${k.id}_`);
  assert.ok(k.plaintext.startsWith(k.prefix));
  const secret = k.plaintext.slice(k.prefix.length);
  assert.deepEqual(k.secretHash, createHash('sha256').update(secret).digest());
  assert.ok(!k.secretHash.toString('hex').includes(Buffer.from(secret).toString('hex')));
});

test('generated keys do not repeat, and every character of the alphabets turns up', () => {
  const ids = new Set<string>();
  const secrets = new Set<string>();
  const chars = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const k = generateKey();
    const p = parseKey(k.plaintext);
    assert.ok(p);
    ids.add(p.id);
    secrets.add(p.secret);
    for (const c of p.secret) chars.add(c);
  }
  assert.equal(ids.size, 2000);
  assert.equal(secrets.size, 2000);
  assert.equal(chars.size, 62); // 86,000 draws: a missing character would mean a biased alphabet
});

test('parseKey refuses anything that is not exactly the shape generateKey writes', () => {
  const good = generateKey().plaintext;
  assert.deepEqual(parseKey(good), { id: good.slice(3, 15), secret: good.slice(16) });
  const bad = [
    '',
    'sk_',
    good.slice(0, -1), // short
    `${good}A`, // long
    `pk${good.slice(2)}`, // other prefix
    `${good.slice(0, 15)}-${good.slice(16)}`, // separator
    `${good.slice(0, 3)}${good.slice(3, 15).toUpperCase()}${good.slice(15)}`, // id outside base32
    `${good.slice(0, 3)}0${good.slice(4)}`, // 0 is not base32
    `${good.slice(0, -1)}_`, // secret outside base62
    ` ${good.slice(1)}`,
  ];
  for (const b of bad) assert.equal(parseKey(b), undefined, JSON.stringify(b));
});

test('verifySecret: the right secret only; a hash of another length is refused, not thrown', () => {
  const k = generateKey();
  const p = parseKey(k.plaintext);
  assert.ok(p);
  assert.equal(verifySecret(p.secret, k.secretHash), true);
  const flipped = p.secret[0] === 'A' ? `B${p.secret.slice(1)}` : `A${p.secret.slice(1)}`;
  assert.equal(verifySecret(flipped, k.secretHash), false);
  assert.equal(verifySecret(p.secret, k.secretHash.subarray(0, 16)), false);
});

function snapshotWith(tenants: TenantEntry[], keys: KeyEntry[]): TenancySnapshot {
  return {
    version: 1,
    loadedAt: 0,
    loadMs: 0,
    tenantsById: new Map(tenants.map((t) => [t.id, t])),
    keysById: new Map(keys.map((k) => [k.id, k])),
  };
}

test('lookupKey: ok, malformed, unknown, wrong secret, revoked, expired, tenant suspended or gone', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  const tenant = (id: string, status: 'active' | 'suspended'): TenantEntry => ({
    id,
    name: id,
    region: 'eu',
    plan: null,
    labels: {},
    status,
  });
  const made: Record<string, string> = {};
  const key = (name: string, tenantId: string, extra: Partial<KeyEntry> = {}): KeyEntry => {
    const g = generateKey();
    made[name] = g.plaintext;
    return {
      id: g.id,
      tenantId,
      secretHash: g.secretHash,
      scopes: ['read'],
      expiresAt: null,
      revoked: false,
      ...extra,
    };
  };
  const snap = snapshotWith(
    [tenant('acme', 'active'), tenant('sleepy', 'suspended')],
    [
      key('good', 'acme', { expiresAt: now + 1000 }),
      key('revoked', 'acme', { revoked: true }),
      key('expired', 'acme', { expiresAt: now }),
      key('suspended', 'sleepy'),
      key('orphan', 'gone'),
    ],
  );
  const good = lookupKey(snap, made.good as string, now);
  assert.ok(good.ok);
  assert.equal(good.tenant.id, 'acme');
  assert.deepEqual(good.key.scopes, ['read']);
  assert.deepEqual(lookupKey(snap, 'Bearer nope', now), { ok: false, reason: 'malformed' });
  const stranger = generateKey();
  assert.deepEqual(lookupKey(snap, stranger.plaintext, now), {
    ok: false,
    reason: 'unknown',
    keyId: stranger.id,
  });
  // The id of a real key with a wrong secret reads as unknown: its state is not told to a guesser.
  const wrong = `${(made.revoked as string).slice(0, 16)}${'A'.repeat(43)}`;
  assert.equal(lookupKey(snap, wrong, now).ok, false);
  assert.equal((lookupKey(snap, wrong, now) as { reason: string }).reason, 'unknown');
  const reason = (name: string, at = now) =>
    (lookupKey(snap, made[name] as string, at) as { reason?: string }).reason;
  assert.equal(reason('revoked'), 'revoked');
  assert.equal(reason('expired'), 'expired');
  assert.equal(reason('good', now + 999), undefined);
  assert.equal(reason('good', now + 1000), 'expired');
  assert.equal(reason('suspended'), 'tenant-suspended');
  assert.equal(reason('orphan'), 'tenant-suspended');
});
