/**
 * Which route wins, through the whole gateway: every matcher (host, path, method, header) and the
 * documented tie order (src/dataplane/router.ts, docs/routing.md#which-route-wins), the 404 problem,
 * rewrites and the host header policy. Each route stamps its name on the request it forwards
 * (`x-route`), and the echo upstream reports what it received.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The route that forwarded the request (from the echo), when it reached the upstream. */
  route: string | undefined;
  /** The request target the upstream received. */
  url: string | undefined;
  upstreamHeaders: Record<string, string | string[] | undefined>;
  problem: { code: string; status: number; title: string } | undefined;
}

/** One request with full control of Host, method and headers. */
function send(
  port: number,
  path: string,
  opts: { host?: string; method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: opts.host ?? 'gw.test', ...opts.headers },
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          const type = res.headers['content-type'] ?? '';
          const json = type.includes('json') && text ? (JSON.parse(text) as Record<string, unknown>) : {};
          const echoed = (json.headers ?? {}) as Record<string, string | string[] | undefined>;
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            route: typeof echoed['x-route'] === 'string' ? echoed['x-route'] : undefined,
            url: typeof json.url === 'string' ? json.url : undefined,
            upstreamHeaders: echoed,
            problem: type.startsWith('application/problem+json') ? (json as Answer['problem']) : undefined,
          });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** A route to the echo upstream that stamps its name on the forwarded request. */
function route(name: string, match: object, extra: Record<string, unknown> = {}): object {
  return { name, match, upstream: 'up', headers: { request: { set: { 'x-route': name } } }, ...extra };
}

let up: TestUpstream;
before(async () => {
  up = await startUpstream();
});
after(async () => {
  await up.close();
});

async function gatewayWith(routes: object[]): Promise<TestGateway> {
  return startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes,
  });
}

/** Send and return the name of the route that forwarded the request (undefined when none did). */
async function winner(gw: TestGateway, path: string, opts: Parameters<typeof send>[2] = {}) {
  const a = await send(gw.port, path, opts);
  if (a.route === undefined) assert.equal(a.status, 404, `${path}: neither forwarded nor a 404`);
  return a.route;
}

describe('hosts', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith([
      route('any-host', { path: { prefix: '/' } }, { priority: 100 }),
      route('wild', { hosts: ['*.example.com'], path: { prefix: '/' } }),
      route('wild-eu', { hosts: ['*.eu.example.com'], path: { prefix: '/' } }),
      route('wild-narrow', { hosts: ['*.fall.example.com'], path: { prefix: '/only' } }),
      route('exact', { hosts: ['api.example.com', 'api2.example.org'], path: { prefix: '/' } }),
      route('exact-port', { hosts: ['ported.example.com:8443'], path: { prefix: '/' } }),
      route('shop-cart', { hosts: ['shop.example.com'], path: { exact: '/cart' } }),
    ]);
  });
  after(() => gw.stop());

  test('an exact host matches case-insensitively, with or without a port', async () => {
    assert.equal(await winner(gw, '/x', { host: 'api.example.com' }), 'exact');
    assert.equal(await winner(gw, '/x', { host: 'API.Example.COM' }), 'exact');
    assert.equal(await winner(gw, '/x', { host: 'api.example.com:8080' }), 'exact');
    assert.equal(await winner(gw, '/x', { host: 'api2.example.org' }), 'exact');
  });

  test('a host listed with a port matches only that port; another port falls to the wildcard', async () => {
    assert.equal(await winner(gw, '/x', { host: 'ported.example.com:8443' }), 'exact-port');
    assert.equal(await winner(gw, '/x', { host: 'ported.example.com:9999' }), 'wild');
    assert.equal(await winner(gw, '/x', { host: 'ported.example.com' }), 'wild');
  });

  test('a wildcard matches subdomains at any depth but not the bare domain', async () => {
    assert.equal(await winner(gw, '/x', { host: 'www.example.com' }), 'wild');
    assert.equal(await winner(gw, '/x', { host: 'a.b.example.com:81' }), 'wild');
    assert.equal(await winner(gw, '/x', { host: 'example.com' }), 'any-host');
    assert.equal(await winner(gw, '/x', { host: 'notexample.com' }), 'any-host');
  });

  test('the longest matching wildcard wins', async () => {
    assert.equal(await winner(gw, '/x', { host: 'shop.eu.example.com' }), 'wild-eu');
  });

  test('exact beats wildcard beats no host, whatever the priority of the less specific class', async () => {
    // `any-host` has priority 100: priority orders routes within a host class, never across.
    assert.equal(await winner(gw, '/x', { host: 'api.example.com' }), 'exact');
    assert.equal(await winner(gw, '/x', { host: 'www.example.com' }), 'wild');
    assert.equal(await winner(gw, '/x', { host: 'elsewhere.test' }), 'any-host');
  });

  test('when nothing in a more specific host class matches, the next class is tried', async () => {
    assert.equal(await winner(gw, '/cart', { host: 'shop.example.com' }), 'shop-cart');
    // The exact host has no route for /other: the wildcard class takes it.
    assert.equal(await winner(gw, '/other', { host: 'shop.example.com' }), 'wild');
    // The longest wildcard has no route for /x: the shorter wildcard takes it.
    assert.equal(await winner(gw, '/only/x', { host: 'a.fall.example.com' }), 'wild-narrow');
    assert.equal(await winner(gw, '/x', { host: 'a.fall.example.com' }), 'wild');
  });
});

describe('paths', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith([
      route('exact', { path: { exact: '/api/status' } }),
      route('api', { path: { prefix: '/api' } }),
      route('static', { path: { prefix: '/static/' } }),
      route('user', { path: { pattern: '/users/:id' } }),
      route('user-post', { path: { pattern: '/users/:id/posts/:post' } }),
      route('me', { path: { pattern: '/users/me' } }),
      route('files', { path: { pattern: '/files/*' } }),
    ]);
  });
  after(() => gw.stop());

  test('an exact path matches only itself', async () => {
    assert.equal(await winner(gw, '/api/status'), 'exact');
    assert.equal(await winner(gw, '/api/status/x'), 'api');
    assert.equal(await winner(gw, '/api/statusx'), 'api');
  });

  test('a prefix is segment-aware: /api matches /api and /api/x, never /apix', async () => {
    assert.equal(await winner(gw, '/api'), 'api');
    assert.equal(await winner(gw, '/api/'), 'api');
    assert.equal(await winner(gw, '/api/x/y'), 'api');
    assert.equal(await winner(gw, '/apix'), undefined);
    assert.equal(await winner(gw, '/ap'), undefined);
  });

  test('a prefix ending in / is a plain prefix', async () => {
    assert.equal(await winner(gw, '/static/a.css'), 'static');
    assert.equal(await winner(gw, '/static/'), 'static');
    assert.equal(await winner(gw, '/static'), undefined);
  });

  test('a pattern binds :params to exactly one non-empty segment', async () => {
    assert.equal(await winner(gw, '/users/42'), 'user');
    assert.equal(await winner(gw, '/users/42/posts/7'), 'user-post');
    assert.equal(await winner(gw, '/users'), undefined);
    assert.equal(await winner(gw, '/users/'), undefined);
    assert.equal(await winner(gw, '/users/42/posts'), undefined);
    assert.equal(await winner(gw, '/users/42/extra'), undefined);
  });

  test('a literal segment beats a parameter in the same place', async () => {
    assert.equal(await winner(gw, '/users/me'), 'me');
  });

  test('a trailing * takes the rest of the path, including nothing', async () => {
    assert.equal(await winner(gw, '/files/a/b/c.txt'), 'files');
    assert.equal(await winner(gw, '/files/'), 'files');
    assert.equal(await winner(gw, '/files'), 'files');
    assert.equal(await winner(gw, '/filesx'), undefined);
  });

  test('a request no route matches gets a 404 problem with SLUICE-ROUTE-001 and reaches no upstream', async () => {
    const before = up.seen.length;
    const a = await send(gw.port, '/nothing/here?x=1');
    assert.equal(a.status, 404);
    assert.match(String(a.headers['content-type']), /^application\/problem\+json/);
    assert.equal(a.problem?.code, 'SLUICE-ROUTE-001');
    assert.equal(a.problem?.status, 404);
    assert.match(String(a.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.equal(up.seen.length, before);
  });
});

describe('methods and headers', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith([
      route('m-get', { path: { prefix: '/m' }, methods: ['GET'] }),
      route('m-write', { path: { prefix: '/m' }, methods: ['POST', 'PUT'] }),
      route('m-any', { path: { prefix: '/m' } }),
      // Methods are a condition, not a rank: a method-less route earlier in the file wins ties.
      route('m2-any', { path: { prefix: '/m2' } }),
      route('m2-get', { path: { prefix: '/m2' }, methods: ['GET'] }),
      route('m3-delete', { path: { prefix: '/m3' }, methods: ['DELETE'] }),

      route('h-ver', { path: { prefix: '/h' }, headers: [{ name: 'X-Version', value: '2' }] }),
      route('h-tenant', { path: { prefix: '/h' }, headers: [{ name: 'x-tenant', regex: '^t-[0-9]+$' }] }),
      route('h-debug', { path: { prefix: '/h' }, headers: [{ name: 'X-Debug', present: true }] }),
      route('h-none', { path: { prefix: '/h' } }),
      route('hq-no-internal', { path: { prefix: '/hq' }, headers: [{ name: 'X-Internal', present: false }] }),
      route('hq-any', { path: { prefix: '/hq' } }),
    ]);
  });
  after(() => gw.stop());

  test('methods select among routes with the same path', async () => {
    assert.equal(await winner(gw, '/m', { method: 'GET' }), 'm-get');
    assert.equal(await winner(gw, '/m', { method: 'POST' }), 'm-write');
    assert.equal(await winner(gw, '/m', { method: 'PUT' }), 'm-write');
    assert.equal(await winner(gw, '/m', { method: 'DELETE' }), 'm-any');
    assert.equal(await winner(gw, '/m2', { method: 'GET' }), 'm2-any');
    assert.equal(await winner(gw, '/m3', { method: 'DELETE' }), 'm3-delete');
    assert.equal(await winner(gw, '/m3', { method: 'GET' }), undefined);
  });

  test('a header value must match exactly; the name is case-insensitive', async () => {
    assert.equal(await winner(gw, '/h', { headers: { 'x-version': '2' } }), 'h-ver');
    assert.equal(await winner(gw, '/h', { headers: { 'X-VERSION': '2' } }), 'h-ver');
    assert.equal(await winner(gw, '/h', { headers: { 'x-version': '3' } }), 'h-none');
    assert.equal(await winner(gw, '/h', { headers: { 'x-version': '22' } }), 'h-none');
  });

  test('a header regex must match', async () => {
    assert.equal(await winner(gw, '/h', { headers: { 'x-tenant': 't-42' } }), 'h-tenant');
    assert.equal(await winner(gw, '/h', { headers: { 'x-tenant': 't-x' } }), 'h-none');
    assert.equal(await winner(gw, '/h', { headers: { 'x-tenant': 'xt-42' } }), 'h-none');
  });

  test('present: true needs the header with any value, present: false needs it absent', async () => {
    assert.equal(await winner(gw, '/h', { headers: { 'x-debug': '' } }), 'h-debug');
    assert.equal(await winner(gw, '/h', { headers: { 'x-debug': 'anything' } }), 'h-debug');
    assert.equal(await winner(gw, '/h'), 'h-none');
    assert.equal(await winner(gw, '/hq'), 'hq-no-internal');
    assert.equal(await winner(gw, '/hq', { headers: { 'x-internal': '1' } }), 'hq-any');
  });
});

describe('tie order', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith([
      // 1. priority beats the path kind
      route('p-exact', { path: { exact: '/p/a' } }),
      route('p-prefix-high', { path: { prefix: '/p' } }, { priority: 10 }),
      route('p-prefix-low', { path: { prefix: '/p2' } }, { priority: -1 }),
      route('p-any', {}, { priority: -5 }),
      // 2. path kind: exact, then pattern, then prefix; 3. specificity within a kind
      route('k-prefix-short', { path: { prefix: '/k' } }),
      route('k-prefix-long', { path: { prefix: '/k/a' } }),
      route('k-pattern-loose', { path: { pattern: '/k/:x/:y' } }),
      route('k-pattern', { path: { pattern: '/k/:x/b' } }),
      route('k-exact', { path: { exact: '/k/exact' } }),
      route('k-rest', { path: { pattern: '/k/:x/:y/*' } }),
      route('k-fixed', { path: { pattern: '/k/:x/:y/:z' } }),
      // 4. more header conditions first
      route('c-one', { path: { prefix: '/c' }, headers: [{ name: 'x-a', present: true }] }),
      route('c-two', {
        path: { prefix: '/c' },
        headers: [
          { name: 'x-a', present: true },
          { name: 'x-b', present: true },
        ],
      }),
      // 5. file order
      route('f-first', { path: { prefix: '/f' } }),
      route('f-second', { path: { prefix: '/f' } }),
    ]);
  });
  after(() => gw.stop());

  test('a higher priority wins over a more specific path', async () => {
    assert.equal(await winner(gw, '/p/a'), 'p-prefix-high');
  });

  test('a negative priority ranks a route below the default 0', async () => {
    // `/p2/x` matches p-prefix-low (-1) and p-any (-5); p-prefix-high does not match /p2.
    assert.equal(await winner(gw, '/p2/x'), 'p-prefix-low');
    assert.equal(await winner(gw, '/elsewhere'), 'p-any');
  });

  test('exact beats pattern beats prefix, then the more specific of a kind wins', async () => {
    assert.equal(await winner(gw, '/k/exact'), 'k-exact');
    // A pattern wins over a longer prefix.
    assert.equal(await winner(gw, '/k/a/b'), 'k-pattern');
    // More literal segments first, whatever the file order.
    assert.equal(await winner(gw, '/k/q/b'), 'k-pattern');
    assert.equal(await winner(gw, '/k/q/r'), 'k-pattern-loose');
    // A longer prefix first.
    assert.equal(await winner(gw, '/k/a'), 'k-prefix-long');
    assert.equal(await winner(gw, '/k/q'), 'k-prefix-short');
    // More segments first, and a pattern without * before one with it.
    assert.equal(await winner(gw, '/k/q/r/s'), 'k-fixed');
    assert.equal(await winner(gw, '/k/q/r/s/t'), 'k-rest');
  });

  test('more header conditions win when everything else is equal', async () => {
    assert.equal(await winner(gw, '/c', { headers: { 'x-a': '1', 'x-b': '1' } }), 'c-two');
    assert.equal(await winner(gw, '/c', { headers: { 'x-a': '1' } }), 'c-one');
  });

  test('the order in the file breaks the remaining ties', async () => {
    assert.equal(await winner(gw, '/f'), 'f-first');
  });
});

describe('rewrites', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith([
      route('strip', { path: { prefix: '/strip' } }, { rewrite: { stripPrefix: true } }),
      route('strip-slash', { path: { prefix: '/s2/' } }, { rewrite: { stripPrefix: true } }),
      route('replace', { path: { prefix: '/old' } }, { rewrite: { prefix: '/new/v2' } }),
      route('replace-slash', { path: { prefix: '/o2/' } }, { rewrite: { prefix: '/' } }),
      route(
        'template',
        { path: { pattern: '/users/:id/orders/:oid' } },
        { rewrite: { path: '/v1/orders/{oid}/by/{id}' } },
      ),
      route(
        'template-rest',
        { path: { pattern: '/assets/:ver/*' } },
        { rewrite: { path: '/static/{ver}/{*}' } },
      ),
      route('template-prefix', { path: { prefix: '/docs' } }, { rewrite: { path: '/site/{*}' } }),
      route('plain', { path: { prefix: '/plain' } }),
    ]);
  });
  after(() => gw.stop());

  const cases: [string, string][] = [
    ['/strip/a/b', '/a/b'],
    ['/strip', '/'],
    ['/strip/', '/'],
    ['/s2/a', '/a'],
    ['/old/x/y', '/new/v2/x/y'],
    ['/old', '/new/v2'],
    ['/o2/x', '/x'],
    ['/users/7/orders/99', '/v1/orders/99/by/7'],
    ['/assets/v3/img/logo.png', '/static/v3/img/logo.png'],
    ['/docs/guide/intro', '/site/guide/intro'],
    ['/plain/as/is', '/plain/as/is'],
  ];
  for (const [from, to] of cases) {
    test(`${from} is forwarded as ${to}`, async () => {
      const a = await send(gw.port, from);
      assert.equal(a.status, 200);
      assert.equal(a.url, to);
    });
  }

  test('the query string is forwarded byte for byte, after the rewritten path', async () => {
    const q = '?a=1&b=%2e%2e/../x&c=%2F&d=%zz&e&&f=caf%C3%A9&g=a+b';
    assert.equal((await send(gw.port, `/strip/a${q}`)).url, `/a${q}`);
    assert.equal((await send(gw.port, `/users/7/orders/9${q}`)).url, `/v1/orders/9/by/7${q}`);
    assert.equal((await send(gw.port, `/plain${q}`)).url, `/plain${q}`);
    assert.equal((await send(gw.port, '/strip?')).url, '/?');
  });

  test('the rewrite applies to the normalised path', async () => {
    assert.equal((await send(gw.port, '/strip/a/../b/./c')).url, '/b/c');
    assert.equal((await send(gw.port, '/users/%37/orders/9')).url, '/v1/orders/9/by/7');
  });
});

describe('host header policy', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await gatewayWith([
      route('default', { path: { prefix: '/default' } }),
      route('upstream', { path: { prefix: '/upstream' } }, { hostHeader: 'upstream' }),
      route('preserve', { path: { prefix: '/preserve' } }, { hostHeader: 'preserve' }),
      route('fixed', { path: { prefix: '/fixed' } }, { hostHeader: { value: 'internal.svc:8080' } }),
    ]);
  });
  after(() => gw.stop());

  const client = 'client.example:8443';
  test('the default sends the target host:port', async () => {
    const a = await send(gw.port, '/default', { host: client });
    assert.equal(a.upstreamHeaders.host, `127.0.0.1:${up.port}`);
    assert.equal(a.upstreamHeaders['x-forwarded-host'], client);
  });

  test('upstream sends the target host:port', async () => {
    const a = await send(gw.port, '/upstream', { host: client });
    assert.equal(a.upstreamHeaders.host, `127.0.0.1:${up.port}`);
  });

  test('preserve sends the client Host', async () => {
    const a = await send(gw.port, '/preserve', { host: client });
    assert.equal(a.upstreamHeaders.host, client);
  });

  test('a fixed value is sent as is', async () => {
    const a = await send(gw.port, '/fixed', { host: client });
    assert.equal(a.upstreamHeaders.host, 'internal.svc:8080');
    assert.equal(a.upstreamHeaders['x-forwarded-host'], client);
  });

  test('the upstream sees exactly one Host header', async () => {
    const before = up.seen.length;
    await send(gw.port, '/preserve', { host: client });
    const raw = up.seen[before]!.rawHeaders;
    const hosts = raw.filter((_, i) => i % 2 === 0 && raw[i]!.toLowerCase() === 'host');
    assert.equal(hosts.length, 1);
  });
});
