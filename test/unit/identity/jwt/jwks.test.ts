/**
 * The key-set cache against a real OpenID Connect provider: discovery, readiness, key rotation picked up
 * without a restart, the unknown-kid refetch rate limit, stale-if-error while the provider is down,
 * background refresh and Cache-Control, and what the metrics sink is told.
 * The cache's clock is injectable: tests move it instead of sleeping through intervals.
 */
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import {
  type JwksFetchResult,
  type JwksMetricsSink,
  JwksPool,
  type JwksState,
  type UnknownKidOutcome,
} from '../../../../src/identity/jwt/jwks.js';
import { createVerifier, type Verifier } from '../../../../src/identity/jwt/verify.js';
import { DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../../../harness/oidc.js';

const nowSec = () => Math.floor(Date.now() / 1000);

class RecordingSink extends EventEmitter implements JwksMetricsSink {
  fetches: JwksFetchResult[] = [];
  unknown: UnknownKidOutcome[] = [];
  last: JwksState | undefined;
  fetch(_issuer: string, result: JwksFetchResult) {
    this.fetches.push(result);
    this.emit('fetch', result);
  }
  unknownKid(_issuer: string, outcome: UnknownKidOutcome) {
    this.unknown.push(outcome);
  }
  state(_issuer: string, state: JwksState) {
    this.last = state;
    this.emit('state', state);
  }
}

let p: OidcProvider;
let offset = 0;
const clock = () => Date.now() + offset;
const opened: Verifier[] = [];

function verifier(jwks: Record<string, string> = {}, extra: { jwksUri?: string; discovery?: boolean } = {}) {
  const sink = new RecordingSink();
  const v = createVerifier(
    { main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE], jwks, ...extra } },
    { pool: new JwksPool({ metrics: sink, now: clock }) },
  );
  opened.push(v);
  return { v, sink, cache: v.jwks('main')! };
}

const reason = async (v: Verifier, t: string) => {
  const r = await v.verify(t);
  return r.ok ? 'ok' : r.reason;
};

const stranger = generateKeyPair('RS256');

/** A token signed by a key the provider never had, under a kid it never published. */
async function strangerToken(kid: string) {
  const k = await stranger;
  return new SignJWT({ iss: p.issuer, aud: DEFAULT_AUDIENCE, exp: nowSec() + 60 })
    .setProtectedHeader({ alg: 'RS256', kid })
    .sign(k.privateKey);
}

before(async () => {
  p = await startOidcProvider();
});
beforeEach(async () => {
  offset = 0;
  await p.start();
});
// Each test's caches stop their refresh loops, so no test sees another's fetches.
afterEach(() => {
  for (const v of opened.splice(0)) v.close();
});
after(async () => {
  await p.close();
});

test('discovery finds jwks_uri; ready settles once the keys are in, and the sink says so', async () => {
  const before = { ...p.counts };
  const { v, sink } = verifier();
  assert.equal(v.isReady(), false);
  await v.ready;
  assert.equal(v.isReady(), true);
  assert.equal(p.counts.discovery, before.discovery + 1);
  assert.equal(p.counts.jwks, before.jwks + 1);
  assert.deepEqual(sink.fetches, ['ok']);
  assert.equal(sink.last?.keys, 2, 'the RSA and the EC key');
  assert.equal(sink.last?.stale, false);
  assert.ok(sink.last!.lastSuccessMs > 0);
});

test('an explicit jwksUri skips discovery', async () => {
  const before = p.counts.discovery;
  const { v } = verifier({}, { jwksUri: p.jwksUri });
  await v.ready;
  assert.equal(p.counts.discovery, before);
  assert.equal(await reason(v, await p.issueToken()), 'ok');
});

test('ready waits for a provider that is down at start and turns true once it answers', async () => {
  await p.stop();
  const { v, sink } = verifier({ minRefetchInterval: '1s' });
  await once(sink, 'fetch');
  assert.equal(sink.fetches[0], 'error');
  assert.equal(v.isReady(), false);
  const t = await p.sign({ iss: p.issuer, aud: DEFAULT_AUDIENCE, exp: nowSec() + 60 });
  assert.equal(await reason(v, t), 'jwks-unavailable');
  await p.start();
  await v.ready; // the retry (after 1s) finds the provider back
  assert.equal(v.isReady(), true);
  assert.equal(await reason(v, t), 'ok');
});

test('key rotation at the provider is picked up without a restart: an unknown kid triggers one refetch', async () => {
  const { v, sink } = verifier();
  await v.ready;
  const oldToken = await p.issueToken();
  const oldUnverified = await p.issueToken();
  assert.equal(await reason(v, oldToken), 'ok');
  const oldKid = p.kids.RS256;

  await p.rotateKeys();
  assert.notEqual(p.kids.RS256, oldKid);
  offset += 31_000; // past minRefetchInterval (30s) since the first fetch
  const fetchesBefore = p.counts.jwks;
  const newToken = await p.issueToken();
  assert.equal(await reason(v, newToken), 'ok', 'the new key was fetched on demand');
  assert.equal(p.counts.jwks, fetchesBefore + 1);
  assert.deepEqual(sink.unknown, ['refetch']);
  // The old key left the set: a token signed with it that was never verified is now refused.
  assert.equal(await reason(v, oldUnverified), 'unknown-kid');
  assert.equal(p.counts.jwks, fetchesBefore + 1, 'and that miss did not fetch again (rate limit)');
});

test('a flood of unknown kids makes at most one fetch per minRefetchInterval, shared by concurrent misses', async () => {
  const { v, sink } = verifier({ minRefetchInterval: '30s' });
  await v.ready;
  const tokens = await Promise.all(Array.from({ length: 40 }, (_, i) => strangerToken(`stranger-${i}`)));
  offset += 31_000;
  const before = p.counts.jwks;
  // Concurrent: the first miss fetches, the rest wait on that same fetch.
  const results = await Promise.all(tokens.slice(0, 20).map((t) => reason(v, t)));
  assert.deepEqual(new Set(results), new Set(['unknown-kid']));
  assert.equal(p.counts.jwks, before + 1);
  assert.equal(sink.unknown.filter((o) => o === 'refetch').length, 1);
  assert.equal(sink.unknown.filter((o) => o === 'joined').length, 19);
  // Right after: refused at once, no fetch.
  for (const t of tokens.slice(20, 30)) assert.equal(await reason(v, t), 'unknown-kid');
  assert.equal(p.counts.jwks, before + 1);
  assert.equal(sink.unknown.filter((o) => o === 'rate-limited').length, 10);
  // Once the interval has passed, one more fetch.
  offset += 31_000;
  for (const t of tokens.slice(30)) assert.equal(await reason(v, t), 'unknown-kid');
  assert.equal(p.counts.jwks, before + 2);
});

test('stale-if-error: with the provider down the last good set keeps verifying, marked stale, until staleFor', async () => {
  const { v, sink, cache } = verifier({ refreshInterval: '10m', staleFor: '1h' });
  await v.ready;
  const token = await p.issueToken();
  const unseen = await p.sign({ iss: p.issuer, aud: DEFAULT_AUDIENCE, exp: nowSec() + 60 });
  await p.stop();

  offset += 11 * 60_000; // past the set's lifetime
  assert.equal(await cache.refresh(), false);
  assert.equal(sink.fetches.at(-1), 'error');
  assert.equal(sink.last?.stale, true, 'the sink is told the set is stale');
  assert.equal(sink.last?.keys, 2);
  assert.equal(await reason(v, token), 'ok', 'an existing kid still verifies');

  offset += 60 * 60_000; // past expiry + staleFor
  assert.equal(await reason(v, unseen), 'jwks-unavailable');
  assert.equal(await cache.refresh(), false);
  assert.equal(sink.last?.keys, 0, 'the set was dropped');
  assert.equal(v.isReady(), false);

  await p.start();
  assert.equal(await cache.refresh(), true);
  assert.equal(sink.last?.stale, false);
  assert.equal(v.isReady(), true);
  assert.equal(await reason(v, await p.issueToken()), 'ok');
});

test('the set is refreshed in the background before it expires', async () => {
  const { v, sink } = verifier({ refreshInterval: '1s', minRefetchInterval: '1s' });
  await v.ready;
  const before = p.counts.jwks;
  // Refresh at ~80% of the 1s lifetime; waits on the provider's own request event.
  await once(p.events, 'jwks');
  await once(sink, 'fetch');
  assert.equal(p.counts.jwks, before + 1);
  assert.equal(sink.fetches.at(-1), 'ok');
});

test('Cache-Control max-age sets the lifetime, within [1m, refreshInterval]', async () => {
  let maxAge = '1';
  const keys = await (await fetch(p.jwksUri)).text();
  const jwksServer = createServer((_req, res) => {
    res.setHeader('cache-control', `public, max-age=${maxAge}`);
    res.setHeader('content-type', 'application/json');
    res.end(keys);
  }).listen(0, '127.0.0.1');
  await once(jwksServer, 'listening');
  const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/`;
  const lifetime = async (age: string) => {
    maxAge = age;
    const { v, sink } = verifier({ refreshInterval: '10m' }, { jwksUri });
    await v.ready;
    const s = sink.last!;
    v.close();
    return Math.round((s.expiresAtMs - s.lastSuccessMs) / 1000);
  };
  const close = (a: number, b: number) => Math.abs(a - b) <= 1;
  assert.ok(close(await lifetime('1'), 60), 'max-age below 1m: 1m');
  assert.ok(close(await lifetime('120'), 120), 'max-age honoured');
  assert.ok(close(await lifetime('86400'), 600), 'capped by refreshInterval');
  jwksServer.close();
});

test('a pool shares one warm cache between verifiers of the same issuer (config reloads)', async () => {
  const pool = new JwksPool({ now: clock });
  const cfg = { main: { issuer: p.issuer, audiences: [DEFAULT_AUDIENCE] } };
  const a = createVerifier(cfg, { pool });
  await a.ready;
  const before = p.counts.jwks;
  const b = createVerifier(cfg, { pool });
  assert.equal(b.isReady(), true, 'ready at once: the set is already there');
  assert.equal(b.jwks('main'), a.jwks('main'));
  a.close();
  assert.equal(await reason(b, await p.issueToken()), 'ok');
  assert.equal(p.counts.jwks, before, 'no refetch for the second verifier');
  b.close();
  pool.close();
});
