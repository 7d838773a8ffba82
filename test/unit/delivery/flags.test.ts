/**
 * Flag evaluation, in memory: the bucketing against an independent MurmurHash3 (imurmurhash) and
 * the vectors published in docs/flags.md, targeting on verified tenant, principal and headers,
 * variants of each type, rollout shares over 10 000 keys, stickiness as a percentage grows, the
 * checks on what may be stored, the OFREP context that cannot be spoofed, and the forwarded header.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import MurmurHash3 from 'imurmurhash';
import { bucketOf } from '../../../src/delivery/bucketing.js';
import { compileFlag, type FlagContext } from '../../../src/delivery/flags/evaluate.js';
import { flagSnapshot } from '../../../src/delivery/flags/snapshot.js';
import { type FlagSpecT, flagProblems } from '../../../src/delivery/flags/spec.js';
import {
  evaluateBulk,
  OfrepContext,
  ofrepTarget,
  parseRequest,
} from '../../../src/delivery/ofrep/protocol.js';
import { sfMember } from '../../../src/policies/flags/header.js';
import type { TenantView } from '../../../src/policies/policy.js';

/** The independent oracle: imurmurhash over the UTF-8 bytes (as a binary string), then the v1 formula. */
function oracle(salt: string, key: string): { h: number; bucket: number } {
  const h = MurmurHash3(Buffer.from(`${salt}/${key}`, 'utf8').toString('latin1')).result() >>> 0;
  return { h, bucket: Math.floor((h * 10000) / 2 ** 32) };
}

const tenant = (id: string, extra: Partial<TenantView> = {}): TenantView => ({
  id,
  name: id,
  region: null,
  plan: null,
  status: 'active',
  labels: {},
  ...extra,
});

function ctx(o: {
  targetingKey?: string;
  tenant?: TenantView;
  principal?: string;
  headers?: Record<string, string>;
  attrs?: Record<string, unknown>;
}): FlagContext {
  return {
    targetingKey: o.targetingKey,
    tenant: o.tenant,
    principal: o.principal,
    header: (n) => o.headers?.[n],
    attribute: (n) => o.attrs?.[n],
  };
}

const bool = (extra: Partial<FlagSpecT> = {}): FlagSpecT => ({
  enabled: true,
  variants: { on: true, off: false },
  defaultVariant: 'off',
  ...extra,
});

describe('bucketing v1', () => {
  test('bucketOf equals an independent MurmurHash3 (imurmurhash) for 2 000 keys, ASCII and not', () => {
    for (let i = 0; i < 2000; i++) {
      const salt = i % 3 === 0 ? 'new-checkout' : i % 3 === 1 ? 'theme' : 'sälz';
      const key = i % 5 === 0 ? `ü-user-${i}` : `user-${i}`;
      assert.equal(bucketOf(salt, key, 'v1'), oracle(salt, key).bucket, `${salt}/${key}`);
    }
  });

  test('the vectors published in docs/flags.md hold for the oracle and for bucketOf', () => {
    const doc = readFileSync(new URL('../../../docs/flags.md', import.meta.url), 'utf8');
    const section = doc.slice(
      doc.indexOf('<!-- bucketing-vectors -->'),
      doc.indexOf('<!-- /bucketing-vectors -->'),
    );
    const rows = [...section.matchAll(/^\| `([^`]*)` \| `([^`]*)` \| (\d+) \| (\d+) \|$/gm)];
    assert.ok(rows.length >= 8, `vectors found: ${rows.length}`);
    for (const [, salt, key, h, bucket] of rows) {
      const o = oracle(salt!, key!);
      assert.equal(o.h, Number(h), `hash of ${salt}/${key}`);
      assert.equal(o.bucket, Number(bucket), `oracle bucket of ${salt}/${key}`);
      assert.equal(bucketOf(salt!, key!), Number(bucket), `bucketOf(${salt}, ${key})`);
    }
  });
});

describe('targeting', () => {
  const spec: FlagSpecT = {
    enabled: true,
    variants: { basic: 'basic', pro: 'pro', beta: 'beta', eu: 'eu', ops: 'ops', hdr: 'hdr' },
    defaultVariant: 'basic',
    rules: [
      { when: [{ attribute: 'tenant.id', in: ['acme'] }], variant: 'beta' },
      { when: [{ attribute: 'tenant.plan', in: ['pro', 'enterprise'] }], variant: 'pro' },
      {
        when: [
          { attribute: 'tenant.region', in: ['eu-west'] },
          { attribute: 'tenant.labels.tier', in: ['gold'] },
        ],
        variant: 'eu',
      },
      { when: [{ attribute: 'principal', matches: '^ops:' }], variant: 'ops' },
      { when: [{ attribute: 'header.x-canary', present: true }], variant: 'hdr' },
    ],
  };
  const f = compileFlag('plan-ui', spec);
  const variant = (c: FlagContext) => {
    const r = f.evaluate(c);
    assert.ok(r.ok);
    return `${r.variant}/${r.reason}`;
  };

  test('the first rule whose conditions all hold decides (TARGETING_MATCH); none: the default (DEFAULT)', () => {
    assert.equal(variant(ctx({ tenant: tenant('acme', { plan: 'pro' }) })), 'beta/TARGETING_MATCH');
    assert.equal(variant(ctx({ tenant: tenant('globex', { plan: 'enterprise' }) })), 'pro/TARGETING_MATCH');
    assert.equal(
      variant(ctx({ tenant: tenant('initech', { region: 'eu-west', labels: { tier: 'gold' } }) })),
      'eu/TARGETING_MATCH',
    );
    // Both conditions must hold.
    assert.equal(
      variant(ctx({ tenant: tenant('initech', { region: 'eu-west', labels: { tier: 'silver' } }) })),
      'basic/DEFAULT',
    );
    assert.equal(variant(ctx({ principal: 'ops:alice' })), 'ops/TARGETING_MATCH');
    assert.equal(variant(ctx({ principal: 'dev:bob' })), 'basic/DEFAULT');
    assert.equal(variant(ctx({ headers: { 'x-canary': '1' } })), 'hdr/TARGETING_MATCH');
    assert.equal(variant(ctx({})), 'basic/DEFAULT');
  });

  test('notIn holds for an absent attribute; present: false for an absent one', () => {
    const g = compileFlag(
      'x',
      bool({
        rules: [
          {
            when: [
              { attribute: 'tenant.id', notIn: ['blocked'] },
              { attribute: 'tier', present: false },
            ],
            variant: 'on',
          },
        ],
      }),
    );
    assert.equal((g.evaluate(ctx({})) as { variant: string }).variant, 'on');
    assert.equal((g.evaluate(ctx({ tenant: tenant('blocked') })) as { variant: string }).variant, 'off');
    assert.equal((g.evaluate(ctx({ attrs: { tier: 'x' } })) as { variant: string }).variant, 'off');
  });

  test('variants of every type, STATIC without rules, DISABLED when off', () => {
    for (const [variants, value] of [
      [{ a: 'dark', b: 'light' }, 'dark'],
      [{ a: 10, b: 20.5 }, 10],
      [
        { a: { max: 3, list: ['x'] }, b: { max: 1 } },
        { max: 3, list: ['x'] },
      ],
      [{ a: true, b: false }, true],
    ] as const) {
      const f1 = compileFlag('t', { enabled: true, variants, defaultVariant: 'a' });
      assert.deepEqual(f1.evaluate(ctx({})), { ok: true, variant: 'a', index: 0, value, reason: 'STATIC' });
      const f2 = compileFlag('t', {
        enabled: false,
        variants,
        defaultVariant: 'a',
        rules: [{ when: [{ attribute: 'principal', present: true }], variant: 'b' }],
      });
      assert.equal((f2.evaluate(ctx({ principal: 'p' })) as { reason: string }).reason, 'DISABLED');
    }
  });
});

describe('rollout', () => {
  const rollout = (percent: number, by: 'user' | 'tenant' = 'user') =>
    compileFlag(
      'new-checkout',
      bool({
        rollout: {
          by,
          variants: [
            { variant: 'on', weight: percent },
            { variant: 'off', weight: 100 - percent },
          ],
        },
      }),
    );
  const onSet = (percent: number) => {
    const f = rollout(percent);
    const on = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const r = f.evaluate(ctx({ targetingKey: `user-${i}` }));
      assert.ok(r.ok);
      assert.equal(r.reason, 'SPLIT');
      if (r.value === true) on.add(`user-${i}`);
    }
    return on;
  };

  test('shares over 10 000 keys are within 1.5 points of the weights (10%, 25%, 50%)', () => {
    // A binomial share of 10 000 draws has a standard deviation of at most 0.5 points: 1.5 is 3σ.
    for (const p of [10, 25, 50]) {
      const n = onSet(p).size;
      assert.ok(Math.abs(n / 100 - p) <= 1.5, `${p}%: ${n} of 10 000 on`);
    }
  });

  test('sticky: a key is always in the bucket the oracle says, and growing 10 → 25 → 50 → 100 only adds', () => {
    const s10 = onSet(10);
    const s25 = onSet(25);
    const s50 = onSet(50);
    const s100 = onSet(100);
    for (const k of s10) assert.ok(s25.has(k), `${k} left the on set at 25%`);
    for (const k of s25) assert.ok(s50.has(k), `${k} left the on set at 50%`);
    assert.equal(s100.size, 10_000);
    // Membership is the oracle's bucket below the weight's 2 500 buckets, nothing else.
    for (let i = 0; i < 10_000; i++) {
      const k = `user-${i}`;
      assert.equal(s25.has(k), oracle('new-checkout', k).bucket < 2500, k);
    }
  });

  test('by tenant: every user of a tenant gets the same variant; the seed is the salt', () => {
    const f = rollout(50, 'tenant');
    for (const t of ['acme', 'globex', 'initech', 'umbrella']) {
      const expected = oracle('new-checkout', t).bucket < 5000;
      for (let u = 0; u < 50; u++) {
        const r = f.evaluate(ctx({ tenant: tenant(t), targetingKey: `u${u}` }));
        assert.ok(r.ok);
        assert.equal(r.value, expected, `${t}/u${u}`);
      }
    }
    const seeded = compileFlag(
      'new-checkout',
      bool({
        seed: 'seed-2026',
        rollout: {
          by: 'tenant',
          variants: [
            { variant: 'on', weight: 50 },
            { variant: 'off', weight: 50 },
          ],
        },
      }),
    );
    const r = seeded.evaluate(ctx({ tenant: tenant('acme') }));
    assert.ok(r.ok);
    assert.equal(r.value, oracle('seed-2026', 'acme').bucket < 5000);
  });

  test('by user without a targeting key: TARGETING_KEY_MISSING; by tenant without a tenant: the default', () => {
    assert.deepEqual(
      (rollout(50).evaluate(ctx({})) as { errorCode: string }).errorCode,
      'TARGETING_KEY_MISSING',
    );
    const r = rollout(50, 'tenant').evaluate(ctx({ targetingKey: 'u' }));
    assert.ok(r.ok);
    assert.equal(r.variant, 'off');
    assert.equal(r.reason, 'DEFAULT');
  });
});

describe('what may be stored', () => {
  test('references, weights, types, regexes, rule forms and identity headers are checked', () => {
    const problems = flagProblems({
      enabled: true,
      variants: { on: true, off: 'no' },
      defaultVariant: 'maybe',
      rules: [
        { when: [{ attribute: 'header.authorization', present: true }], variant: 'on' },
        { when: [{ attribute: 'header.x-sluice-tenant', in: ['acme'] }], variant: 'on' },
        { when: [{ attribute: 'x', matches: '(' }], variant: 'nope' },
        {
          when: [{ attribute: 'tenant.owner', in: ['a'] }],
          variant: 'on',
          rollout: { by: 'user', variants: [] },
        },
        { when: [{ attribute: 'y', in: ['a'], present: true }], variant: 'on' },
      ],
      rollout: {
        by: 'user',
        variants: [
          { variant: 'on', weight: 10.001 },
          { variant: 'off', weight: 80 },
        ],
      },
    });
    const at = new Set(problems.map((p) => p.path));
    for (const p of [
      '/variants/off',
      '/defaultVariant',
      '/rules/0/when/0/attribute',
      '/rules/1/when/0/attribute',
      '/rules/2/when/0/matches',
      '/rules/2/variant',
      '/rules/3',
      '/rules/3/when/0/attribute',
      '/rules/4/when/0',
      '/rollout/variants/0/weight',
      '/rollout/variants',
    ])
      assert.ok(at.has(p), `expected a problem at ${p}: ${JSON.stringify(problems)}`);
    assert.deepEqual(flagProblems(bool()), []);
  });
});

describe('OFREP', () => {
  const req = { headers: { 'x-canary': '1', authorization: 'Bearer secret' } } as unknown as IncomingMessage;
  const hidden = new Set(['authorization']);
  const spec = bool({
    rules: [
      { when: [{ attribute: 'tenant.id', in: ['victim'] }], variant: 'on' },
      { when: [{ attribute: 'header.authorization', present: true }], variant: 'on' },
    ],
  });

  test('tenant attributes come from the verified context: the client cannot name another tenant', () => {
    const f = compileFlag('f', spec);
    const parsed = parseRequest(
      Buffer.from(
        JSON.stringify({
          context: { targetingKey: 'u1', tenant: 'victim', 'tenant.id': 'victim', tenantId: 'victim' },
        }),
      ),
    );
    assert.ok(parsed.ok);
    const verified = {
      tenant: tenant('attacker'),
      principal: { kind: 'apiKey', id: 'k1', tenantId: 'attacker', scopes: [] },
    };
    const c = new OfrepContext(parsed.targetingKey, parsed.context, verified as never, req, hidden);
    const r = f.evaluate(c);
    assert.ok(r.ok);
    assert.equal(r.variant, 'off');
    // The same flag for the verified victim tenant does match: the rule works, the spoof does not.
    const v = new OfrepContext('u1', {}, { tenant: tenant('victim') } as never, req, hidden);
    assert.equal((f.evaluate(v) as { variant: string }).variant, 'on');
  });

  test('hidden headers read as absent', () => {
    // Written around flagProblems (which refuses the rule): the evaluation hides the header too.
    const f = compileFlag('f', spec);
    const c = new OfrepContext('u', {}, undefined, req, hidden);
    assert.equal((f.evaluate(c) as { variant: string }).variant, 'off');
  });

  test('requests: empty, context, parse errors, invalid contexts', () => {
    assert.deepEqual(parseRequest(Buffer.alloc(0)), { ok: true, context: {}, targetingKey: undefined });
    assert.equal((parseRequest(Buffer.from('{nope')) as { errorCode: string }).errorCode, 'PARSE_ERROR');
    assert.equal((parseRequest(Buffer.from('[1]')) as { errorCode: string }).errorCode, 'PARSE_ERROR');
    assert.equal(
      (parseRequest(Buffer.from('{"context": 3}')) as { errorCode: string }).errorCode,
      'INVALID_CONTEXT',
    );
    assert.equal(
      (parseRequest(Buffer.from('{"context": {"targetingKey": 7}}')) as { errorCode: string }).errorCode,
      'INVALID_CONTEXT',
    );
  });

  test('paths: bulk, single (a base path before it), others', () => {
    assert.deepEqual(ofrepTarget('/ofrep/v1/evaluate/flags'), { kind: 'bulk' });
    assert.deepEqual(ofrepTarget('/flags-api/ofrep/v1/evaluate/flags/new-checkout'), {
      kind: 'single',
      key: 'new-checkout',
    });
    assert.equal(ofrepTarget('/ofrep/v1/evaluate/flags/a/b'), undefined);
    assert.equal(ofrepTarget('/ofrep/v1/configuration'), undefined);
  });

  test('bulk: every flag in key order, the ETag changes with the answer, If-None-Match → 304', () => {
    const snap = flagSnapshot(1, [
      compileFlag('b', bool()),
      compileFlag('a', bool({ defaultVariant: 'on' })),
    ]);
    const c = () => new OfrepContext('u', {}, undefined, req, hidden);
    const first = evaluateBulk(snap, parseRequest(Buffer.alloc(0)), c, undefined);
    assert.equal(first.status, 200);
    assert.deepEqual(
      (JSON.parse(first.body.toString()) as { flags: { key: string; value: boolean }[] }).flags.map((f) => [
        f.key,
        f.value,
      ]),
      [
        ['a', true],
        ['b', false],
      ],
    );
    assert.equal(evaluateBulk(snap, parseRequest(Buffer.alloc(0)), c, first.etag).status, 304);
    assert.equal(evaluateBulk(snap, parseRequest(Buffer.alloc(0)), c, `W/${first.etag}, "x"`).status, 304);
    const changed = flagSnapshot(2, [
      compileFlag('b', bool({ defaultVariant: 'on' }), 2),
      compileFlag('a', bool()),
    ]);
    const second = evaluateBulk(changed, parseRequest(Buffer.alloc(0)), c, first.etag);
    assert.equal(second.status, 200);
    assert.notEqual(second.etag, first.etag);
  });
});

test('forwarded header members (RFC 8941 dictionary)', () => {
  assert.equal(sfMember('a', true), 'a=?1');
  assert.equal(sfMember('a', false), 'a=?0');
  assert.equal(sfMember('n', 42), 'n=42');
  assert.equal(sfMember('n', 2.5), 'n=2.5');
  assert.equal(sfMember('n', 0.1234), 'n="0.1234"');
  assert.equal(sfMember('s', 'say "hi" \\o/'), 's="say \\"hi\\" \\\\o/"');
  assert.equal(sfMember('s', 'café'), 's=%"caf%c3%a9"');
  assert.equal(sfMember('o', { b: 'ü', n: 1 }), 'o="{\\"b\\":\\"\\\\u00fc\\",\\"n\\":1}"');
});
