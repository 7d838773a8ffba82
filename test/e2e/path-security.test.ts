/**
 * Path normalisation attacks, sent over raw sockets so that no client library cleans them first.
 *
 * The setup is the classic one: a public route (`/public`) and a protected one (`/admin`, reachable
 * only with `x-admin-key`), each to its own upstream. For every request we check the answer and
 * what each upstream saw: a refused request reaches no upstream; a forwarded one is forwarded with
 * exactly the path it was matched on; and nothing sent through `/public` can ever be read as an
 * `/admin` path by the public upstream, even one that decodes the path once more.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { rawRequest } from '../harness/raw.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

let pub: TestUpstream;
let adm: TestUpstream;
let int: TestUpstream;

before(async () => {
  [pub, adm, int] = await Promise.all([startUpstream(), startUpstream(), startUpstream()]);
});
after(async () => {
  await Promise.all([pub.close(), adm.close(), int.close()]);
});

function config(paths: object | undefined): object {
  return {
    listen: { host: '127.0.0.1', port: 0, ...(paths ? { paths } : {}) },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: {
      pub: { targets: [{ url: pub.url }] },
      adm: { targets: [{ url: adm.url }] },
      int: { targets: [{ url: int.url }] },
    },
    routes: [
      { name: 'public', match: { path: { prefix: '/public' } }, upstream: 'pub' },
      {
        name: 'admin',
        match: { path: { prefix: '/admin' }, headers: [{ name: 'x-admin-key', value: 'k' }] },
        upstream: 'adm',
      },
      {
        name: 'internal',
        match: { hosts: ['internal.example'], path: { prefix: '/' } },
        upstream: 'int',
        hostHeader: 'preserve',
      },
    ],
  };
}

interface Outcome {
  status: number;
  code: string | undefined;
  contentType: string | undefined;
  /** Request targets each upstream received during this request. */
  pub: string[];
  adm: string[];
  int: string[];
  intHost: string | undefined;
}

/** Send one request line byte for byte (latin1), with a Host and optional extra header lines. */
async function send(
  gw: TestGateway,
  target: string,
  opts: { host?: string; headers?: string } = {},
): Promise<Outcome> {
  const marks = [pub.seen.length, adm.seen.length, int.seen.length] as const;
  const head = `GET ${target} HTTP/1.1\r\nHost: ${opts.host ?? 'gw.test'}\r\n${opts.headers ?? ''}\r\n`;
  const r = await rawRequest(gw.port, Buffer.from(head, 'latin1'));
  assert.ok(r.status > 0, `no response to ${JSON.stringify(target)}`);
  const code = r.headers['content-type']?.startsWith('application/problem+json')
    ? (JSON.parse(r.body) as { code: string }).code
    : undefined;
  const ints = int.seen.slice(marks[2]);
  return {
    status: r.status,
    code,
    contentType: r.headers['content-type'],
    pub: pub.seen.slice(marks[0]).map((s) => s.url),
    adm: adm.seen.slice(marks[1]).map((s) => s.url),
    int: ints.map((s) => s.url),
    intHost: ints[0]?.headers.host,
  };
}

/** The path decoded once (every escape, byte by byte), the way an upstream may read it, in segments. */
function decodedOnce(url: string): string[] {
  const path = url.split('?')[0]!;
  return path
    .replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    .split('/');
}

/** A path the public upstream received must stay under /public, with no dot-segment, even decoded. */
function assertStaysPublic(url: string): void {
  for (const segs of [url.split('?')[0]!.split('/'), decodedOnce(url)]) {
    assert.equal(segs[1], 'public', `${url} left /public`);
    assert.ok(!segs.includes('..') && !segs.includes('.'), `${url} carries a dot-segment`);
  }
}

function assertRefused(o: Outcome, target: string, status = 400, code = 'SLUICE-REQ-004'): void {
  assert.equal(o.status, status, `${JSON.stringify(target)}: status`);
  assert.equal(o.contentType, 'application/problem+json', `${JSON.stringify(target)}: content type`);
  assert.equal(o.code, code, `${JSON.stringify(target)}: code`);
  assert.deepEqual([...o.pub, ...o.adm, ...o.int], [], `${JSON.stringify(target)} reached an upstream`);
}

function assertForwarded(o: Outcome, target: string, to: 'pub' | 'adm' | 'int', path: string): void {
  assert.equal(o.status, 200, `${JSON.stringify(target)}: status`);
  const seen = { pub: o.pub, adm: o.adm, int: o.int };
  for (const k of ['pub', 'adm', 'int'] as const)
    assert.deepEqual(seen[k], k === to ? [path] : [], `${JSON.stringify(target)}: ${k} saw`);
  if (to === 'pub') assertStaysPublic(path);
}

describe('default policy (encoded slashes rejected, slashes merged)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config(undefined));
  });
  after(() => gw.stop());

  // Dot-segments in every spelling are resolved before routing: the result is /admin, which the
  // admin route's rules (here: the key header) then decide, so without the key it is a 404.
  const dotSpellings = [
    '/public/../admin',
    '/public/%2e%2e/admin',
    '/public/%2E%2E/admin',
    '/public/.%2e/admin',
    '/public/%2e./admin',
    '/public/%2E./admin',
    '/public/x/../../admin',
    '/public/./../admin',
    '/public//..//admin',
  ];
  for (const target of dotSpellings) {
    test(`${target} is resolved to /admin and gets the admin route's rules`, async () => {
      const o = await send(gw, target);
      assertRefused(o, target, 404, 'SLUICE-ROUTE-001');
      const withKey = await send(gw, `${target}/users?x=1`, { headers: 'x-admin-key: k\r\n' });
      assertForwarded(withKey, target, 'adm', '/admin/users?x=1');
    });
  }

  const refusedPaths: [string, string][] = [
    ['/admin;x/users', 'matrix parameters a servlet upstream strips after Sluice routed the path'],
    ['/public;x/../admin', 'a segment with matrix parameters'],
    ['/public/..;/admin', 'dot-segment with an empty parameter'],
    ['/public/..;jsessionid=1/admin', 'dot-segment with a parameter'],
    ['/public/.;/admin', 'single dot with a parameter'],
    ['/public/%2e%2e;/admin', 'encoded dots with a parameter'],
    ['/public/..%3B/admin', 'dot-segment with an encoded ;'],
    ['/public/..%3b/admin', 'dot-segment with an encoded ; (lower case)'],
    ['/public\\..\\admin', 'raw backslashes'],
    ['/public/..\\admin', 'one raw backslash'],
    ['/public/%5C../admin', 'an encoded backslash'],
    ['/public/..%5cadmin', 'an encoded backslash (lower case)'],
    ['/public/..%2Fadmin', 'an encoded slash'],
    ['/public%2F..%2Fadmin', 'encoded slashes only'],
    ['/public/a%2fb', 'a harmless-looking encoded slash'],
    ['/public/%2e%2e%2fadmin', 'encoded dots and slash'],
    ['/public/%00', 'an encoded NUL'],
    ['/public/a%00.txt', 'an encoded NUL inside a segment'],
    ['/public/%zz', 'an invalid escape'],
    ['/public/%', 'a lone %'],
    ['/public/%2', 'a truncated escape'],
    ['/public/%g0', 'a non-hex escape'],
    ['/..', 'climbing above the root'],
    ['/../admin', 'climbing above the root to /admin'],
    ['/public/../../admin', 'climbing above the root through /public'],
    ['/public/%2e%2e/%2e%2e/admin', 'climbing above the root, encoded'],
    ['/%2e%2e/public', 'climbing above the root, then back'],
    ['http://gw.test/public/..;/admin', 'an absolute-form target with ..;'],
    ['http://user@internal.example/x', 'an absolute-form target with userinfo'],
  ];
  for (const [target, why] of refusedPaths) {
    test(`${why} (${target}) is refused with 400 SLUICE-REQ-004 and forwarded nowhere`, async () => {
      assertRefused(await send(gw, target), target);
      // The key does not change that.
      assertRefused(await send(gw, target, { headers: 'x-admin-key: k\r\n' }), target);
    });
  }

  test('raw bytes the parser refuses in a path (NUL, non-ASCII) are a 400 problem too', async () => {
    for (const target of ['/public/a\x00b', '/public/caf\xc3\xa9', '/public/\x7f']) {
      assertRefused(await send(gw, target), target);
    }
  });

  test('double encoding stays literal: %252e%252e is never decoded twice', async () => {
    const o = await send(gw, '/public/%252e%252e/admin');
    assertForwarded(o, 'double encoding', 'pub', '/public/%252e%252e/admin');
    const o2 = await send(gw, '/public/%252e%252e%252fadmin');
    assertForwarded(o2, 'double encoding', 'pub', '/public/%252e%252e%252fadmin');
  });

  const canonical: [string, string][] = [
    ['/public/a', '/public/a'],
    ['//public///a//b', '/public/a/b'],
    ['/public/./a', '/public/a'],
    ['/public/a/b/../../c', '/public/c'],
    ['/public/a/..', '/public/'],
    ['/public/a/.', '/public/a/'],
    ['/public/%61%2D%7e', '/public/a-~'],
    ['/public/%e9', '/public/%E9'],
    ['/public/...', '/public/...'],
    ['/public/..a/.b', '/public/..a/.b'],
    ['/public/a?p=/../admin&q=%2e%2e%2F&r=%zz', '/public/a?p=/../admin&q=%2e%2e%2F&r=%zz'],
    ['/public/%2e%2e/public/x', '/public/x'],
  ];
  for (const [target, path] of canonical) {
    test(`${target} is forwarded to the public upstream as ${path}`, async () => {
      assertForwarded(await send(gw, target), target, 'pub', path);
    });
  }

  test('merged slashes cannot smuggle a path past a prefix', async () => {
    assertRefused(await send(gw, '//admin'), '//admin', 404, 'SLUICE-ROUTE-001');
    assertForwarded(
      await send(gw, '//admin//x', { headers: 'x-admin-key: k\r\n' }),
      '//admin//x',
      'adm',
      '/admin/x',
    );
  });

  test('an absolute-form target is reduced to its path, normalised like any other', async () => {
    assertForwarded(await send(gw, 'http://gw.test/public/a?x=1'), 'absolute-form', 'pub', '/public/a?x=1');
    assertForwarded(await send(gw, 'http://gw.test/public/%2e%2e/public/b'), 'absolute', 'pub', '/public/b');
    assertRefused(await send(gw, 'http://gw.test/public/../admin'), 'absolute', 404, 'SLUICE-ROUTE-001');
    assertRefused(await send(gw, 'http://gw.test'), 'absolute, no path', 404, 'SLUICE-ROUTE-001');
  });

  test("an absolute-form target's authority is the host that is routed on and forwarded (RFC 9112 §3.2.2)", async () => {
    const o = await send(gw, 'http://internal.example/x?y=1', { host: 'gw.test' });
    assertForwarded(o, 'absolute-form', 'int', '/x?y=1');
    assert.equal(o.intHost, 'internal.example');
    // And the other way round: a Host naming the internal route does not win over the target.
    const o2 = await send(gw, 'http://gw.test/public/z', { host: 'internal.example' });
    assertForwarded(o2, 'absolute-form', 'pub', '/public/z');
  });

  test('a target that is neither a path nor absolute-form is refused', async () => {
    assertRefused(await send(gw, '*'), '*');
    assertRefused(await send(gw, 'public/a'), 'public/a');
  });
});

describe('encodedSlashes: keep, mergeSlashes: false, matrixParams: keep', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(config({ encodedSlashes: 'keep', mergeSlashes: false, matrixParams: 'keep' }));
  });
  after(() => gw.stop());

  test('with matrixParams: keep, a ; stays in its segment and dot-segments around it still resolve', async () => {
    assertForwarded(await send(gw, '/public/a;v=1/b'), 'matrix', 'pub', '/public/a;v=1/b');
    assertRefused(await send(gw, '/public;x/../admin'), 'matrix then dots', 404, 'SLUICE-ROUTE-001');
    assertRefused(await send(gw, '/public/..;/admin'), 'dot-segment with a parameter');
  });

  test('an encoded slash is kept encoded and forwarded as written (escape in upper case)', async () => {
    assertForwarded(await send(gw, '/public/a%2Fb'), 'keep', 'pub', '/public/a%2Fb');
    assertForwarded(await send(gw, '/public/a%2fb?c=d'), 'keep', 'pub', '/public/a%2Fb?c=d');
    assertForwarded(await send(gw, '/public/a%5Cb'), 'keep', 'pub', '/public/a%5Cb');
  });

  test('an encoded slash is not a segment separator for matching', async () => {
    assertRefused(await send(gw, '/public%2Fa'), '/public%2Fa', 404, 'SLUICE-ROUTE-001');
    assertRefused(
      await send(gw, '/admin%2Fusers', { headers: 'x-admin-key: k\r\n' }),
      '/admin%2Fusers',
      404,
      'SLUICE-ROUTE-001',
    );
  });

  // An upstream that decodes %2F before resolving dot-segments would read these as /admin.
  for (const target of [
    '/public/..%2Fadmin',
    '/public/x%2F..%2F..%2Fadmin',
    '/public/%2e%2e%2Fadmin',
    '/public/a%2F.%2Fb',
    '/public/..%5Cadmin',
    '/public/a%2F..;%2Fb',
  ]) {
    test(`a dot-segment between kept encoded slashes (${target}) is refused`, async () => {
      assertRefused(await send(gw, target), target);
    });
  }

  test('runs of slashes are kept, and dot-segments resolve against them', async () => {
    assertForwarded(await send(gw, '/public//a'), 'no merge', 'pub', '/public//a');
    assertForwarded(await send(gw, '/public//../b'), 'no merge', 'pub', '/public/b');
    assertRefused(await send(gw, '//public/a'), '//public/a', 404, 'SLUICE-ROUTE-001');
  });

  test('the other rules still hold', async () => {
    for (const target of ['/public/..;/admin', '/public\\..\\admin', '/public/%00', '/../admin'])
      assertRefused(await send(gw, target), target);
    assertRefused(await send(gw, '/public/../admin'), '/public/../admin', 404, 'SLUICE-ROUTE-001');
  });
});
