/**
 * HTTP/2 through routes with auth, with node:http2 as the client (a real TLS connection, streams
 * multiplexed on it): a stream without a credential, or with a bad one, gets the same 401
 * problem+json and challenge as over HTTP/1.1 and never reaches the upstream; with an API key or a
 * token from a real OpenID provider it is admitted, and the upstream sees exactly the identity
 * Sluice verified (tenant, principal, claim headers) whatever the client sent under those names.
 * Streams of one connection are checked one by one: concurrent streams with different credentials
 * each get their own identity, and a key revoked while the connection stays open is refused on the
 * next stream.
 */
import assert from 'node:assert/strict';
import { type ClientHttp2Session, connect, type OutgoingHttpHeaders } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { certDir, makeCa, makeLeaf } from '../harness/certs.js';
import { waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { DEFAULT_AUDIENCE, type OidcProvider, startOidcProvider } from '../harness/oidc.js';
import { type SeenRequest, startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };
/** The provider's client (client_credentials): the `sub` of the tokens it issues. */
const CLIENT_ID = 'sluice-tests';

const dir = certDir();
const ca = makeCa(dir, 'h2auth-ca');
const leaf = makeLeaf(dir, ca, 'gateway', { cn: 'gw.h2auth.test', san: ['DNS:gw.h2auth.test'] });

interface H2Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function h2(session: ClientHttp2Session, headers: OutgoingHttpHeaders): Promise<H2Answer> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: true });
    let head: Record<string, string | string[] | undefined> = {};
    let body = '';
    s.setEncoding('utf8');
    s.on('response', (h) => {
      head = h;
    });
    s.on('data', (c: string) => {
      body += c;
    });
    s.on('end', () => resolve({ status: Number(head[':status']), headers: head, body }));
    s.on('error', reject);
  });
}

const codeOf = (a: H2Answer) => (JSON.parse(a.body) as { code: string }).code;

/** Every value the upstream got for `name`, in order. */
function values(seen: SeenRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < seen.rawHeaders.length; i += 2)
    if (seen.rawHeaders[i]!.toLowerCase() === name) out.push(seen.rawHeaders[i + 1]!);
  return out;
}

describe('HTTP/2 through routes with auth', () => {
  let up: TestUpstream;
  let op: OidcProvider;
  let g: TestGateway;
  let session: ClientHttp2Session;
  let acme: { id: string; plaintext: string };
  let globex: { id: string; plaintext: string };

  before(async () => {
    up = await startUpstream();
    op = await startOidcProvider();
    g = await startGateway({
      listen: { host: '127.0.0.1', port: 0, tls: { certificates: [{ cert: leaf.cert, key: leaf.key }] } },
      admin: { host: '127.0.0.1', port: 0 },
      store: 'memory://',
      identity: {
        issuers: { op: { issuer: op.issuer, audiences: [DEFAULT_AUDIENCE], algorithms: ['RS256', 'ES256'] } },
      },
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        { name: 'keys', match: { path: { prefix: '/keys' } }, upstream: 'up', auth: { apiKey: true } },
        {
          name: 'jwt',
          match: { path: { prefix: '/jwt' } },
          upstream: 'up',
          auth: { jwt: { tenantClaim: 'tid', forward: { sub: 'x-user-sub' } } },
          tenant: { from: ['jwt'] },
        },
      ],
    });
    const repo = g.gw.tenancy!;
    await repo.createTenant(who, { id: 'acme', name: 'Acme' });
    await repo.createTenant(who, { id: 'globex', name: 'Globex' });
    const a = await repo.createKey(who, 'acme', { name: 'h2' });
    const b = await repo.createKey(who, 'globex', { name: 'h2' });
    // The principal is the key's public id, the text between `sk_` and the next `_`.
    acme = { id: a.plaintext.split('_')[1]!, plaintext: a.plaintext };
    globex = { id: b.plaintext.split('_')[1]!, plaintext: b.plaintext };
    await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 2, 'keys in the snapshot');
    session = connect(`https://127.0.0.1:${g.port}`, { ca: ca.pem, servername: 'gw.h2auth.test' });
    await new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
    });
  });
  after(async () => {
    session?.close();
    await g?.stop();
    await up?.close();
    await op?.close();
  });

  test('no credential, an unknown key, a forged token: 401 problems with a Bearer challenge; the upstream sees none', async () => {
    const before = up.seen.length;
    const none = await h2(session, { ':path': '/keys/x' });
    assert.equal(none.status, 401);
    assert.equal(none.headers['content-type'], 'application/problem+json');
    assert.equal(codeOf(none), 'SLUICE-AUTH-001');
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="sluice"');
    const unknown = await h2(session, {
      ':path': '/keys/x',
      'x-api-key': 'sk_aaaaaaaaaaaa_bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb',
    });
    assert.equal(unknown.status, 401);
    assert.equal(codeOf(unknown), 'SLUICE-AUTH-006');
    // A key of the right shape with its last character changed: the id is real, the secret not.
    const last = acme.plaintext.at(-1) === 'A' ? 'B' : 'A';
    const wrongSecret = await h2(session, {
      ':path': '/keys/x',
      'x-api-key': `${acme.plaintext.slice(0, -1)}${last}`,
    });
    assert.equal(wrongSecret.status, 401);
    assert.equal(codeOf(wrongSecret), 'SLUICE-AUTH-006');
    const noToken = await h2(session, { ':path': '/jwt/x' });
    assert.equal(noToken.status, 401);
    assert.equal(codeOf(noToken), 'SLUICE-AUTH-001');
    // A good token with its signature's last character changed.
    const good = await op.issueToken({ claims: { tid: 'acme' } });
    const sig = good.at(-1) === 'A' ? 'B' : 'A';
    const tampered = await h2(session, {
      ':path': '/jwt/x',
      authorization: `Bearer ${good.slice(0, -1)}${sig}`,
    });
    assert.equal(tampered.status, 401);
    assert.equal(codeOf(tampered), 'SLUICE-AUTH-002');
    assert.match(String(tampered.headers['www-authenticate']), /error="invalid_token"/);
    const otherAudience = await op.issueToken({
      audience: 'https://elsewhere.test',
      claims: { tid: 'acme' },
    });
    const aud = await h2(session, { ':path': '/jwt/x', authorization: `Bearer ${otherAudience}` });
    assert.equal(aud.status, 401);
    assert.equal(up.seen.length, before, 'no refused stream reached the upstream');
  });

  test('an API key: admitted, and the upstream is told its tenant and key id, not what the client wrote', async () => {
    const before = up.seen.length;
    const r = await h2(session, {
      ':path': '/keys/orders',
      'x-api-key': acme.plaintext,
      'x-sluice-tenant': 'globex',
      'x-sluice-principal': 'root',
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(up.seen.length, before + 1);
    const seen = up.seen[before]!;
    assert.equal(seen.url, '/keys/orders');
    assert.deepEqual(values(seen, 'x-sluice-tenant'), ['acme']);
    assert.deepEqual(values(seen, 'x-sluice-principal'), [acme.id]);
    // The key itself still reaches the upstream as sent (it is the caller's header), once.
    assert.deepEqual(values(seen, 'x-api-key'), [acme.plaintext]);
  });

  test("a provider's token (RS256 and ES256): admitted, with the issuer's name and sub as principal and the tid claim as tenant", async () => {
    for (const alg of ['RS256', 'ES256'] as const) {
      const t = await op.issueToken({ alg, claims: { tid: 'globex' } });
      const before = up.seen.length;
      const r = await h2(session, {
        ':path': '/jwt/x',
        authorization: `Bearer ${t}`,
        'x-user-sub': 'admin',
        'x-sluice-tenant': 'acme',
      });
      assert.equal(r.status, 200, `${alg}: ${r.body}`);
      assert.equal(up.seen.length, before + 1);
      const seen = up.seen[before]!;
      assert.deepEqual(values(seen, 'x-sluice-tenant'), ['globex'], alg);
      assert.deepEqual(values(seen, 'x-sluice-principal'), [`op:${CLIENT_ID}`], alg);
      assert.deepEqual(values(seen, 'x-user-sub'), [CLIENT_ID], alg);
    }
  });

  test('concurrent streams on one connection, each with its own credential (or none), each get their own answer and identity', async () => {
    const before = up.seen.length;
    const token = await op.issueToken({ claims: { tid: 'acme' } });
    const plan = [
      { tag: 'a', headers: { 'x-api-key': acme.plaintext }, status: 200, tenant: 'acme', principal: acme.id },
      {
        tag: 'g',
        headers: { 'x-api-key': globex.plaintext },
        status: 200,
        tenant: 'globex',
        principal: globex.id,
      },
      { tag: 'n', headers: {}, status: 401, tenant: '', principal: '' },
    ];
    const rounds = 10;
    const calls: Promise<H2Answer>[] = [];
    for (let i = 0; i < rounds; i++)
      for (const p of plan) calls.push(h2(session, { ':path': `/keys/${p.tag}/${i}`, ...p.headers }));
    // And tokens on the other route in between, on the same connection.
    for (let i = 0; i < rounds; i++)
      calls.push(h2(session, { ':path': `/jwt/t/${i}`, authorization: `Bearer ${token}` }));
    const answers = await Promise.all(calls);
    for (let i = 0; i < rounds; i++)
      for (const [j, p] of plan.entries())
        assert.equal(answers[i * plan.length + j]!.status, p.status, `${p.tag}/${i}`);
    for (let i = 0; i < rounds; i++) assert.equal(answers[rounds * plan.length + i]!.status, 200, `t/${i}`);
    const arrived = up.seen.slice(before);
    assert.equal(arrived.length, rounds * 3, 'two key streams and one token stream per round');
    for (const s of arrived) {
      const tag = s.url.split('/')[2];
      const p = plan.find((x) => x.tag === tag);
      if (tag === 't') {
        assert.deepEqual(values(s, 'x-sluice-tenant'), ['acme'], s.url);
        assert.deepEqual(values(s, 'x-sluice-principal'), [`op:${CLIENT_ID}`], s.url);
        continue;
      }
      assert.ok(p && p.status === 200, `only admitted streams arrive: ${s.url}`);
      assert.deepEqual(values(s, 'x-sluice-tenant'), [p.tenant], s.url);
      assert.deepEqual(values(s, 'x-sluice-principal'), [p.principal], s.url);
    }
  });

  test('a key revoked while the connection stays open is refused on its next stream', async () => {
    const repo = g.gw.tenancy!;
    const k = await repo.createKey(who, 'acme', { name: 'short-lived' });
    await waitFor(
      () => g.gw.identity!.snapshot.current.keysById.has(k.key.id),
      'the new key in the snapshot',
    );
    const ok = await h2(session, { ':path': '/keys/x', 'x-api-key': k.plaintext });
    assert.equal(ok.status, 200, ok.body);
    await repo.revokeKey(who, k.key.id);
    // The revocation reaches the gateway's snapshot by a store notification: wait for that.
    await waitFor(
      () => g.gw.identity!.snapshot.current.keysById.get(k.key.id)?.revoked,
      'the revocation in the snapshot',
      10_000,
    );
    const last = await h2(session, { ':path': '/keys/x', 'x-api-key': k.plaintext });
    assert.equal(last.status, 401, last.body);
    assert.equal(codeOf(last), 'SLUICE-AUTH-007');
    assert.equal(session.closed || session.destroyed, false, 'the same connection goes on');
  });
});
