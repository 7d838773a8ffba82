/**
 * The response cache through a real gateway and a real upstream that counts what reaches it: the
 * same suite on the memory store and on a real Redis. Hits and misses, freshness (Cache-Control,
 * Expires, Age, the route's ttl), Vary, 304s from the cache (ETag and Last-Modified), what is never
 * stored (private, no-store, no-cache, Set-Cookie, authorised requests, statuses, large bodies),
 * tenants kept apart, HEAD from a GET entry, invalidation by unsafe methods, the client's
 * Cache-Control, coalescing of concurrent misses, and metrics.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { deferred, httpRequest, type SimpleResponse, waitFor } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { testDatabase } from '../harness/postgres.js';
import { testRedisUrl } from '../harness/redis.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

const who = { actor: 'test', role: 'admin' };

/** Upstream answers are driven by the query: cc, vary, etag, lm, cookie, status, size, age, expires, hold. */
function cacheableUpstream(hold: { gate: Promise<void> }) {
  const counts = new Map<string, number>();
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const n = (counts.get(req.url!) ?? 0) + 1;
    counts.set(req.url!, n);
    const q = url.searchParams;
    const send = () => {
      const status = Number(q.get('status') ?? 200);
      const size = q.get('size');
      const tenant = req.headers['x-sluice-tenant'] ?? '-';
      const lang = req.headers['accept-language'] ?? '-';
      const body =
        size !== null
          ? Buffer.alloc(Number(size), 'x')
          : Buffer.from(`${req.method} ${url.pathname} #${n} tenant=${tenant} lang=${lang}`);
      const h: Record<string, string | string[]> = { 'content-type': 'text/plain' };
      if (q.has('cc')) h['cache-control'] = q.get('cc')!;
      if (q.has('vary')) h.vary = q.get('vary')!;
      if (q.has('etag')) h.etag = q.get('etag')!;
      if (q.has('lm')) h['last-modified'] = q.get('lm')!;
      if (q.has('cookie')) h['set-cookie'] = [`s=${n}; Path=/`];
      if (q.has('age')) h.age = q.get('age')!;
      if (q.has('expires')) h.expires = q.get('expires')!;
      h['x-upstream-count'] = String(n);
      if (q.has('chunked')) {
        res.writeHead(status, h);
        res.write(body.subarray(0, 10));
        res.end(body.subarray(10));
        return;
      }
      h['content-length'] = String(body.length);
      res.writeHead(status, h);
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    req.resume();
    if (q.has('hold')) void hold.gate.then(send);
    else send();
  };
}

type Kind = 'memory' | 'redis';

for (const kind of ['memory', 'redis'] as Kind[]) {
  describe(`response cache (${kind})`, () => {
    let up: TestUpstream;
    let g: TestGateway;
    const hold = { gate: Promise.resolve() };
    let keyA: string;
    let keyA2: string;
    let keyB: string;
    let drop: (() => Promise<void>) | undefined;

    before(async () => {
      up = await startUpstream(cacheableUpstream(hold));
      // Tenants and keys on a PostgreSQL database of the run (starting PGlite takes seconds).
      const db = await testDatabase();
      drop = db.drop;
      const redisUrl = kind === 'redis' ? await testRedisUrl() : undefined;
      g = await startGateway({
        store: db.url,
        // A generous command timeout: under a full parallel run the default 50 ms can pass, and a
        // lookup that times out bypasses the cache by design (cache-redis.test.ts tests that), which
        // is not what these tests are about.
        ...(kind === 'redis' ? { redis: { url: redisUrl!, keyPrefix: 'cache-test:', timeout: '2s' } } : {}),
        cache: { store: kind, maxBytes: '4mb' },
        upstreams: { up: { targets: [{ url: up.url }] } },
        routes: [
          { name: 'c', match: { path: { prefix: '/c/' } }, upstream: 'up', cache: { maxObjectSize: '1kb' } },
          { name: 'short', match: { path: { prefix: '/short/' } }, upstream: 'up', cache: { ttl: '2s' } },
          { name: 'nottl', match: { path: { prefix: '/nottl/' } }, upstream: 'up', cache: { ttl: 0 } },
          {
            name: 'shared',
            match: { path: { prefix: '/shared/' } },
            upstream: 'up',
            cache: { shared: true, setCookie: 'strip' },
          },
          {
            name: 'keyed',
            match: { path: { prefix: '/keyed/' } },
            upstream: 'up',
            auth: { apiKey: true },
            cache: { shared: true },
          },
          {
            name: 'keyed-private',
            match: { path: { prefix: '/keyed-private/' } },
            upstream: 'up',
            auth: { apiKey: true },
            cache: {},
          },
          {
            name: 'q',
            match: { path: { prefix: '/q/' } },
            upstream: 'up',
            cache: { key: { query: ['page'] }, requestCacheControl: false },
          },
        ],
      });
      const repo = g.gw.tenancy!;
      await repo.createTenant(who, { id: 'acme', name: 'Acme' });
      await repo.createTenant(who, { id: 'globex', name: 'Globex' });
      keyA = (await repo.createKey(who, 'acme', { name: 'a1' })).plaintext;
      keyA2 = (await repo.createKey(who, 'acme', { name: 'a2' })).plaintext;
      keyB = (await repo.createKey(who, 'globex', { name: 'b' })).plaintext;
      await waitFor(() => g.gw.identity!.snapshot.current.keysById.size === 3, 'keys in the snapshot');
    });
    after(async () => {
      await g?.stop();
      await up?.close();
      await drop?.();
    });

    const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
      httpRequest(`${g.url}${path}`, { headers, method });
    const upstreamSaw = (path: string) => up.seen.filter((s) => s.url === path).length;
    const xcache = (r: SimpleResponse) => r.headers['x-cache'];

    test('a miss goes upstream and fills; the next request is a hit with Age, never upstream', async () => {
      const path = '/c/hit?cc=max-age=60';
      const a = await get(path);
      assert.equal(a.status, 200);
      assert.equal(xcache(a), 'MISS');
      const b = await get(path);
      assert.equal(b.status, 200);
      assert.equal(xcache(b), 'HIT');
      assert.equal(b.text, a.text);
      assert.equal(b.headers['content-type'], 'text/plain');
      assert.equal(b.headers['content-length'], String(a.body.length));
      assert.match(String(b.headers.age), /^[0-9]+$/);
      assert.ok(b.headers['x-request-id'] !== a.headers['x-request-id'], 'a hit has its own request id');
      assert.equal(upstreamSaw(path), 1);
    });

    test('the key holds path and query: another query is another entry', async () => {
      await get('/c/query?cc=max-age=60&x=1');
      const other = await get('/c/query?cc=max-age=60&x=2');
      assert.equal(xcache(other), 'MISS');
      assert.equal(xcache(await get('/c/query?cc=max-age=60&x=1')), 'HIT');
    });

    test('key.query: only the listed parameters count', async () => {
      const a = await get('/q/list?cc=max-age=60&page=1&utm=a');
      assert.equal(xcache(a), 'MISS');
      const b = await get('/q/list?cc=max-age=60&page=1&utm=b');
      assert.equal(xcache(b), 'HIT');
      assert.equal(b.text, a.text);
      assert.equal(xcache(await get('/q/list?cc=max-age=60&page=2&utm=a')), 'MISS');
    });

    test('freshness ends: the route ttl for responses without any, then a miss again', async () => {
      const path = '/short/expiry';
      assert.equal(xcache(await get(path)), 'MISS');
      const stored = Date.now(); // the entry was stored by the time its answer arrived
      // 2 s of freshness: long enough that a loaded machine asks again well within it (a 300 ms
      // ttl once expired before the second request on a busy run).
      assert.equal(xcache(await get(path)), 'HIT');
      // The only sleep: freshness is time itself; until the ttl has passed since the entry was stored.
      await new Promise((r) => setTimeout(r, Math.max(0, stored + 2300 - Date.now())));
      assert.equal(xcache(await get(path)), 'MISS');
      assert.equal(upstreamSaw(path), 2);
    });

    test('ttl 0: a response without freshness is not stored; one with max-age is', async () => {
      await get('/nottl/none');
      assert.equal(xcache(await get('/nottl/none')), 'MISS');
      await get('/nottl/some?cc=max-age=60');
      assert.equal(xcache(await get('/nottl/some?cc=max-age=60')), 'HIT');
    });

    test('stale on arrival is not stored: max-age spent by Age, max-age=0, Expires in the past or invalid', async () => {
      for (const path of [
        '/c/stale?cc=max-age=10&age=10',
        '/c/stale?cc=max-age=0',
        `/c/stale?expires=${encodeURIComponent(new Date(Date.now() - 60_000).toUTCString())}`,
        '/c/stale?expires=0',
      ]) {
        await get(path);
        assert.equal(xcache(await get(path)), 'MISS', path);
        assert.equal(upstreamSaw(path), 2, path);
      }
    });

    test('Expires in the future and s-maxage give freshness; Age counts from the upstream Age', async () => {
      const exp = `/c/exp?expires=${encodeURIComponent(new Date(Date.now() + 60_000).toUTCString())}`;
      await get(exp);
      assert.equal(xcache(await get(exp)), 'HIT');
      const s = '/c/smax?cc=max-age=0,s-maxage=60&age=7';
      await get(s);
      const hit = await get(s);
      assert.equal(xcache(hit), 'HIT', 's-maxage wins over max-age in a shared cache');
      assert.ok(Number(hit.headers.age) >= 7);
    });

    test('private, no-store and no-cache responses are never stored', async () => {
      for (const cc of ['private', 'no-store', 'no-cache', 'private, max-age=60', 'no-store, max-age=60']) {
        const path = `/c/never?cc=${encodeURIComponent(cc)}`;
        await get(path);
        assert.equal(xcache(await get(path)), 'MISS', cc);
        assert.equal(upstreamSaw(path), 2, cc);
      }
    });

    test('statuses: 404 is stored, 500 and 206 are not', async () => {
      await get('/c/st?status=404&cc=max-age=60');
      const hit = await get('/c/st?status=404&cc=max-age=60');
      assert.equal(hit.status, 404);
      assert.equal(xcache(hit), 'HIT');
      for (const st of [500, 206]) {
        const path = `/c/st?status=${st}&cc=max-age=60`;
        await get(path);
        assert.equal(xcache(await get(path)), 'MISS', String(st));
      }
    });

    test('Set-Cookie: not stored by default; `strip` stores it without the cookie', async () => {
      const p = '/c/cookie?cc=max-age=60&cookie=1';
      await get(p);
      assert.equal(xcache(await get(p)), 'MISS');
      const s = '/shared/cookie?cc=max-age=60&cookie=1';
      const first = await get(s);
      assert.ok(first.headers['set-cookie'], 'the filling client gets its cookie');
      const hit = await get(s);
      assert.equal(xcache(hit), 'HIT');
      assert.equal(hit.headers['set-cookie'], undefined);
    });

    test('Vary: one entry per variant of the named request headers; Vary: * is not stored', async () => {
      const path = '/c/vary?cc=max-age=60&vary=Accept-Language';
      const en = await get(path, { 'accept-language': 'en' });
      const de = await get(path, { 'accept-language': 'de' });
      assert.equal(xcache(de), 'MISS');
      const en2 = await get(path, { 'accept-language': 'en' });
      assert.equal(xcache(en2), 'HIT');
      assert.equal(en2.text, en.text);
      const de2 = await get(path, { 'accept-language': 'de' });
      assert.equal(de2.text, de.text);
      const none = await get(path);
      assert.equal(xcache(none), 'MISS', 'absent header is its own variant');
      assert.equal(upstreamSaw(path), 3);
      const star = '/c/vary?cc=max-age=60&vary=*';
      await get(star);
      assert.equal(xcache(await get(star)), 'MISS');
    });

    test('If-None-Match: 304 from the cache (strong and weak match), 200 when it differs', async () => {
      const path = '/c/etag?cc=max-age=60&etag=%22v1%22';
      await get(path);
      const nm = await get(path, { 'if-none-match': '"v1"' });
      assert.equal(nm.status, 304);
      assert.equal(xcache(nm), 'HIT');
      assert.equal(nm.headers.etag, '"v1"');
      assert.equal(nm.headers['cache-control'], 'max-age=60');
      assert.equal(nm.headers['content-length'], undefined);
      assert.equal(nm.body.length, 0);
      assert.equal((await get(path, { 'if-none-match': 'W/"v1"' })).status, 304);
      assert.equal((await get(path, { 'if-none-match': '"v0", "v1"' })).status, 304);
      assert.equal((await get(path, { 'if-none-match': '*' })).status, 304);
      const other = await get(path, { 'if-none-match': '"v2"' });
      assert.equal(other.status, 200);
      assert.equal(xcache(other), 'HIT');
      assert.equal(upstreamSaw(path), 1);
    });

    test('If-Modified-Since: 304 from the cache when not modified since, 200 when modified', async () => {
      const lm = new Date(Date.now() - 3600_000).toUTCString();
      const path = `/c/lm?cc=max-age=60&lm=${encodeURIComponent(lm)}`;
      await get(path);
      const later = new Date(Date.now() - 60_000).toUTCString();
      const nm = await get(path, { 'if-modified-since': later });
      assert.equal(nm.status, 304);
      assert.equal(nm.headers['last-modified'], lm);
      const earlier = new Date(Date.now() - 7200_000).toUTCString();
      assert.equal((await get(path, { 'if-modified-since': earlier })).status, 200);
      assert.equal(upstreamSaw(path), 1);
    });

    test('HEAD is answered from the GET entry (length, no body); a HEAD miss stores nothing', async () => {
      const path = '/c/head?cc=max-age=60';
      const full = await get(path);
      const h = await get(path, {}, 'HEAD');
      assert.equal(h.status, 200);
      assert.equal(xcache(h), 'HIT');
      assert.equal(h.headers['content-length'], String(full.body.length));
      assert.equal(h.body.length, 0);
      const only = '/c/head-only?cc=max-age=60';
      await get(only, {}, 'HEAD');
      assert.equal(xcache(await get(only)), 'MISS', 'the HEAD had no body to store');
    });

    test('large bodies are passed through, not stored (sized and chunked)', async () => {
      for (const path of ['/c/big?cc=max-age=60&size=2000', '/c/big?cc=max-age=60&size=2000&chunked=1']) {
        const a = await get(path);
        assert.equal(a.body.length, 2000);
        const b = await get(path);
        assert.equal(xcache(b), 'MISS', path);
        assert.equal(b.body.length, 2000);
      }
      const small = '/c/big?cc=max-age=60&size=900&chunked=1';
      await get(small);
      const hit = await get(small);
      assert.equal(xcache(hit), 'HIT');
      assert.equal(hit.body.length, 900);
    });

    test('Authorization: not stored unless the response is public / s-maxage or the route is shared', async () => {
      const auth = { authorization: 'Bearer x' };
      const p = '/c/auth?cc=max-age=60';
      await get(p, auth);
      assert.equal(xcache(await get(p, auth)), 'MISS');
      const pub = '/c/auth?cc=public,max-age=60';
      await get(pub, auth);
      assert.equal(xcache(await get(pub, auth)), 'HIT');
      const smax = '/c/auth?cc=s-maxage=60';
      await get(smax, auth);
      assert.equal(xcache(await get(smax, auth)), 'HIT');
      const shared = '/shared/auth?cc=max-age=60';
      await get(shared, auth);
      assert.equal(xcache(await get(shared, auth)), 'HIT');
    });

    test('an API-key caller counts as authorised: stored only on a shared route', async () => {
      const p = '/keyed-private/x?cc=max-age=60';
      await get(p, { 'x-api-key': keyA });
      assert.equal(xcache(await get(p, { 'x-api-key': keyA })), 'MISS');
    });

    test('tenants never share entries; callers of one tenant do on a shared route', async () => {
      const path = '/keyed/t?cc=max-age=60';
      const a = await get(path, { 'x-api-key': keyA });
      assert.match(a.text, /tenant=acme/);
      const b = await get(path, { 'x-api-key': keyB });
      assert.equal(xcache(b), 'MISS');
      assert.match(b.text, /tenant=globex/);
      const a2 = await get(path, { 'x-api-key': keyA2 });
      assert.equal(xcache(a2), 'HIT');
      assert.equal(a2.text, a.text);
      const b2 = await get(path, { 'x-api-key': keyB });
      assert.equal(xcache(b2), 'HIT');
      assert.equal(b2.text, b.text);
      assert.equal(upstreamSaw(path), 2);
      // No key: refused by auth before the cache, never served from it.
      assert.equal((await get(path)).status, 401);
    });

    test('a successful unsafe request removes the entry of its URL', async () => {
      const path = '/c/inv?cc=max-age=60';
      await get(path);
      assert.equal(xcache(await get(path)), 'HIT');
      const post = await get(path, {}, 'POST');
      assert.equal(post.status, 200);
      assert.equal(post.headers['x-cache'], undefined, 'a POST is not a cache request');
      assert.equal(xcache(await get(path)), 'MISS');
    });

    test('client Cache-Control: no-cache refreshes the entry, no-store bypasses; a route may ignore both', async () => {
      const path = '/c/client?cc=max-age=60';
      const a = await get(path);
      const r = await get(path, { 'cache-control': 'no-cache' });
      assert.equal(xcache(r), 'REFRESH');
      assert.notEqual(r.text, a.text);
      const h = await get(path);
      assert.equal(xcache(h), 'HIT');
      assert.equal(h.text, r.text, 'the refreshed response replaced the entry');
      assert.equal(xcache(await get(path, { pragma: 'no-cache' })), 'REFRESH');
      const s = await get(path, { 'cache-control': 'no-store' });
      assert.equal(xcache(s), 'BYPASS');
      assert.equal(xcache(await get(path, { 'cache-control': 'max-age=0' })), 'REFRESH');
      const ignored = '/q/ignore?cc=max-age=60';
      await get(ignored);
      assert.equal(xcache(await get(ignored, { 'cache-control': 'no-cache' })), 'HIT');
    });

    test('Range requests bypass the cache', async () => {
      const path = '/c/range?cc=max-age=60';
      await get(path);
      const r = await get(path, { range: 'bytes=0-3' });
      assert.equal(xcache(r), 'BYPASS');
      assert.equal(upstreamSaw(path), 2);
    });

    /**
     * `n` concurrent requests while the upstream holds its answers: released once `upstreamCount`
     * requests reached the upstream and every request is in the gateway (upstream or waiting).
     */
    async function whileHeld(path: string, n: number, upstreamCount: number): Promise<SimpleResponse[]> {
      const gate = deferred();
      hold.gate = gate.promise;
      const before = up.seen.length;
      const pending = Array.from({ length: n }, () => get(path));
      await waitFor(
        () => g.gw.inflight === n && up.seen.length === before + upstreamCount,
        `${n} requests in the gateway, ${upstreamCount} upstream`,
      );
      gate.resolve();
      const rs = await Promise.all(pending);
      hold.gate = Promise.resolve();
      return rs;
    }

    test('coalescing: N concurrent misses make one upstream request; the others are answered from it', async () => {
      const n = 8;
      const path = '/c/coalesce?cc=max-age=60&hold=1';
      const rs = await whileHeld(path, n, 1);
      assert.equal(upstreamSaw(path), 1);
      assert.ok(rs.every((r) => r.status === 200 && r.text === rs[0]!.text));
      assert.deepEqual(rs.map(xcache).sort(), [...Array(n - 1).fill('HIT'), 'MISS'].sort());
    });

    test('coalescing: an uncacheable response releases the waiters; then that key is not queued on', async () => {
      const n = 4;
      const path = '/c/coalesce-private?cc=private&hold=1';
      const first = await whileHeld(path, n, 1);
      assert.ok(first.every((r) => r.status === 200 && xcache(r) === 'MISS'));
      assert.equal(upstreamSaw(path), n);
      // Remembered as uncacheable: the next wave goes upstream at once, all of it (no serialising).
      const second = await whileHeld(path, n, n);
      assert.ok(second.every((r) => r.status === 200 && xcache(r) === 'MISS'));
      assert.equal(upstreamSaw(path), 2 * n);
    });

    test('metrics: requests by result, store decisions, coalesced', async () => {
      const r = await httpRequest(`${g.adminUrl}/metrics`);
      assert.match(r.text, /sluice_cache_requests_total\{route="c",result="hit"\} [1-9]/);
      assert.match(r.text, /sluice_cache_requests_total\{route="c",result="miss"\} [1-9]/);
      assert.match(r.text, /sluice_cache_store_decisions_total\{route="c",decision="private"\} [1-9]/);
      assert.match(r.text, /sluice_cache_coalesced_total\{route="c"\} [1-9]/);
      if (kind === 'memory') assert.match(r.text, /sluice_cache_memory_bytes [1-9]/);
    });
  });
}
