/** Issuer and route-requirement config: what the schema and the load-time checks refuse, and the defaults. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv } from 'ajv';
import {
  issuerConfigErrors,
  requirementErrors,
  resolveIssuers,
} from '../../../../src/identity/jwt/compile.js';
import { JwtIssuers, type JwtIssuersConfig, JwtRequirement } from '../../../../src/identity/jwt/schema.js';

const ajv = new Ajv({ allErrors: true, strict: false });
const validIssuers = ajv.compile(JwtIssuers);
const validRequirement = ajv.compile(JwtRequirement);
const base = { issuer: 'https://login.example.com', audiences: ['api'] };
const messages = (c: JwtIssuersConfig) =>
  issuerConfigErrors(c).map((e) => `${e.path.join('/')}: ${e.message}`);

test('the schema refuses alg none and unknown algorithms, and takes the documented fields', () => {
  assert.equal(validIssuers({ a: { ...base, algorithms: ['none'] } }), false);
  assert.equal(validIssuers({ a: { ...base, algorithms: ['RS1'] } }), false);
  assert.equal(validIssuers({ a: { ...base, audiences: [] } }), false, 'at least one audience');
  assert.equal(validIssuers({ a: { ...base, jwks: { refresh: '1m' } } }), false, 'unknown field');
  assert.equal(
    validIssuers({
      a: {
        ...base,
        algorithms: ['ES256', 'PS256'],
        clockSkew: '10s',
        maxTokenBytes: 4096,
        jwks: { refreshInterval: '5m', minRefetchInterval: '10s', timeout: '2s', staleFor: '12h' },
      },
    }),
    true,
  );
  assert.equal(
    validRequirement({
      issuers: ['a'],
      scopes: ['orders:read'],
      roles: ['admin'],
      rolesClaim: 'realm_access.roles',
      claims: { tenant_tier: 'gold', level: 2, beta: true },
      forward: { sub: 'x-sluice-subject' },
      tenantClaim: 'tid',
    }),
    true,
  );
  assert.equal(validRequirement({ forward: { sub: 'bad header' } }), false);
  assert.equal(validRequirement({ scopes: ['has space'] }), false);
});

test('HMAC and public-key algorithms cannot share an issuer; HMAC needs a secret and no key set', () => {
  assert.match(messages({ a: { ...base, algorithms: ['RS256', 'HS256'] } }).join(), /cannot be mixed/);
  assert.match(messages({ a: { ...base, algorithms: ['HS256'] } }).join(), /a\/secret: HMAC algorithms need/);
  assert.match(
    messages({
      a: { ...base, algorithms: ['HS256'], secret: 's'.repeat(32), jwksUri: 'https://x/jwks' },
    }).join(),
    /fetches no key set/,
  );
  assert.match(messages({ a: { ...base, secret: 's'.repeat(32) } }).join(), /only for HMAC/);
  assert.deepEqual(messages({ a: { ...base, algorithms: ['HS256', 'HS512'], secret: 's'.repeat(32) } }), []);
  // A config that bypassed the schema still cannot smuggle in `none`.
  assert.match(messages({ a: { ...base, algorithms: ['none' as 'RS256'] } }).join(), /never accepted/);
});

test('clock skew at most 5m, interval sanity, discovery vs jwksUri, one name per issuer URL', () => {
  assert.match(messages({ a: { ...base, clockSkew: '6m' } }).join(), /a\/clockSkew: at most 5m/);
  assert.deepEqual(messages({ a: { ...base, clockSkew: '5m' } }), []);
  assert.match(
    messages({ a: { ...base, jwks: { refreshInterval: '1m', minRefetchInterval: '2m' } } }).join(),
    /minRefetchInterval: longer than refreshInterval/,
  );
  assert.match(messages({ a: { ...base, jwks: { refreshInterval: '100ms' } } }).join(), /at least 1s/);
  assert.match(messages({ a: { ...base, discovery: false } }).join(), /jwksUri. is needed/);
  assert.match(messages({ a: { ...base, discovery: true, jwksUri: 'https://x/j' } }).join(), /not both/);
  assert.match(messages({ a: base, b: { ...base } }).join(), /also configured as "a"/);
  assert.throws(() => resolveIssuers({ a: { ...base, clockSkew: '1h' } }), /clockSkew/);
});

test('defaults: RS256 and ES256, 30s skew, 8 KiB, discovery, JWKS intervals', () => {
  const [r] = resolveIssuers({ a: base });
  assert.deepEqual([...r!.algorithms], ['RS256', 'ES256']);
  assert.equal(r!.clockSkewSec, 30);
  assert.equal(r!.maxTokenBytes, 8192);
  assert.equal(r!.secret, undefined);
  assert.deepEqual(r!.jwks, {
    name: 'a',
    issuer: base.issuer,
    jwksUri: undefined,
    algorithms: ['RS256', 'ES256'],
    refreshIntervalMs: 600_000,
    minRefetchIntervalMs: 30_000,
    timeoutMs: 5_000,
    staleForMs: 86_400_000,
  });
  const [fixed] = resolveIssuers({ a: { ...base, jwksUri: 'https://login.example.com/keys' } });
  assert.equal(fixed!.jwks?.jwksUri, 'https://login.example.com/keys');
});

test('route requirements: unknown issuer names, a header forwarded twice, headers that cannot carry claims', () => {
  assert.deepEqual(requirementErrors({ issuers: ['main'] }, ['main']), []);
  assert.match(requirementErrors({ issuers: ['nope'] }, ['main'])[0]!.message, /unknown issuer "nope"/);
  assert.match(requirementErrors({}, [])[0]!.message, /no issuers/);
  const twice = requirementErrors({ forward: { sub: 'X-Who', client_id: 'x-who' } }, ['main']);
  assert.match(twice[0]!.message, /already forwarded/);
  assert.match(
    requirementErrors({ forward: { sub: 'Authorization' } }, ['main'])[0]!.message,
    /cannot carry/,
  );
});
