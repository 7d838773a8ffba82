/**
 * The guard stage on its own, behind the real listener: which request heads it refuses and with
 * which stable code, which refusals close the connection (and mark it, so nothing pipelined behind
 * is routed), the path it normalises once, the Host it takes from an absolute-form target, and the
 * request id it keeps or makes. Requests it lets through reach `passed`, which reports what the
 * guard recorded.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { guard } from '../../../../src/dataplane/stages/guard.js';
import { closingAfterRefusal } from '../../../../src/dataplane/stages/reply.js';
import { passed, startDataplane, type TestDataplane } from '../../../harness/dataplane.js';
import { parseResponse, type RawResponse } from '../../../harness/raw.js';

let dp: TestDataplane;

before(async () => {
  dp = await startDataplane(
    {
      identity: { apiKeys: { header: 'X-Tenant-Key' } },
      upstreams: { up: { targets: [{ url: 'http://127.0.0.1:9' }] } },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    },
    (x) => {
      if (guard(x)) passed(x);
    },
  );
});
after(() => dp.close());

/** Send raw bytes on a fresh connection; read until the server closes it or one sized response is in. */
function send(bytes: string): Promise<RawResponse & { closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect(dp.port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const finish = (closed: boolean) => {
      s.destroy();
      resolve({ ...parseResponse(Buffer.concat(chunks).toString('latin1')), closed });
    };
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      const r = parseResponse(Buffer.concat(chunks).toString('latin1'));
      const len = Number(r.headers['content-length'] ?? Number.NaN);
      // A response that keeps the connection open ends at its length; one that closes, at the close.
      if (r.headers.connection !== 'close' && r.status > 0 && Buffer.byteLength(r.body, 'latin1') >= len)
        finish(false);
    });
    s.on('end', () => finish(true));
    s.on('error', reject);
    s.write(bytes);
  });
}

function problemOf(r: RawResponse): { code: string; status: number; detail?: string; instance?: string } {
  assert.equal(r.headers['content-type'], 'application/problem+json');
  return JSON.parse(r.body) as { code: string; status: number; detail?: string; instance?: string };
}

/** The exchange the last request made (the listener makes one per request it hands on). */
const last = () => dp.exchanges[dp.exchanges.length - 1]!;

describe('credential headers that must be single: 400 SLUICE-REQ-009, connection closed', () => {
  const cases: [string, string][] = [
    ['two Authorization headers', 'Authorization: Bearer a\r\nauthorization: Bearer b\r\n'],
    ['one Authorization holding two credentials', 'Authorization: Bearer a, Bearer b\r\n'],
    [
      'two Proxy-Authorization headers',
      'Proxy-Authorization: Basic YTpi\r\nProxy-Authorization: Basic YzpkZA==\r\n',
    ],
    ['x-api-key twice in other letter cases', 'X-API-Key: k1\r\nx-api-key: k2\r\n'],
    ['the configured API-key header twice', 'X-Tenant-Key: k1\r\nx-tenant-key: k2\r\n'],
    ['the configured API-key header holding a list', 'X-Tenant-Key: k1, k2\r\n'],
  ];
  for (const [what, headers] of cases)
    test(what, async () => {
      const r = await send(`GET /x HTTP/1.1\r\nHost: a.test\r\n${headers}\r\n`);
      assert.equal(r.status, 400);
      assert.equal(problemOf(r).code, 'SLUICE-REQ-009');
      assert.equal(r.headers.connection, 'close');
      assert.equal(r.closed, true);
      assert.equal(r.headers['x-passed'], undefined);
      assert.equal(
        closingAfterRefusal(last().req),
        true,
        'the socket is marked: nothing behind it is routed',
      );
    });

  test('one Authorization and one x-api-key are not a repetition: the guard lets them through', async () => {
    const r = await send(
      'GET /x HTTP/1.1\r\nHost: a.test\r\nAuthorization: Bearer a\r\nX-Api-Key: k\r\n\r\n',
    );
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-passed'], '1');
  });
});

describe('framing: 400 SLUICE-REQ-002, connection closed', () => {
  const cases: [string, string][] = [
    [
      'Transfer-Encoding other than a single chunked',
      'POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
    ],
    [
      'a look-alike Transfer_Encoding',
      'POST /x HTTP/1.1\r\nHost: a.test\r\nTransfer_Encoding: chunked\r\nContent-Length: 0\r\n\r\n',
    ],
    [
      'Transfer-Encoding in an HTTP/1.0 request',
      'POST /x HTTP/1.0\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    ],
  ];
  for (const [what, bytes] of cases)
    test(what, async () => {
      const r = await send(bytes);
      assert.equal(r.status, 400);
      assert.equal(problemOf(r).code, 'SLUICE-REQ-002');
      assert.equal(r.headers.connection, 'close');
      assert.equal(r.closed, true);
      assert.equal(closingAfterRefusal(last().req), true);
    });
});

describe('Host: 400 SLUICE-REQ-003 when missing, repeated or malformed', () => {
  const cases: [string, string][] = [
    ['missing in HTTP/1.1', 'GET /x HTTP/1.1\r\n\r\n'],
    ['repeated', 'GET /x HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n'],
    ['not host[:port]', 'GET /x HTTP/1.1\r\nHost: a.test/evil\r\n\r\n'],
  ];
  for (const [what, bytes] of cases)
    test(what, async () => {
      const r = await send(bytes);
      assert.equal(r.status, 400);
      assert.equal(problemOf(r).code, 'SLUICE-REQ-003');
      assert.equal(r.headers.connection, 'close');
    });

  test('an HTTP/1.0 request may come without Host', async () => {
    const r = await send('GET /x HTTP/1.0\r\n\r\n');
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { host: string | null }).host, null);
  });
});

describe('the request target and its path', () => {
  test('the path is normalised once: dot-segments resolved, slashes merged, unreserved escapes decoded; the query kept apart', async () => {
    const r = await send('GET /a//b/./c/../%64?q=1&r=%2F HTTP/1.1\r\nHost: a.test\r\n\r\n');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { path: string; query: string };
    assert.equal(seen.path, '/a/b/d');
    assert.equal(seen.query, '?q=1&r=%2F');
  });

  const refused: [string, string][] = [
    ['a path that climbs above the root', '/../etc/passwd'],
    ['an encoded slash (rejected by default)', '/a%2Fb'],
    ['a target that is not a path', '*'],
    ['an absolute-form target whose authority carries userinfo', 'http://user@a.test/x'],
  ];
  for (const [what, target] of refused)
    test(`${what}: 400 SLUICE-REQ-004, and the connection stays open`, async () => {
      const r = await send(`GET ${target} HTTP/1.1\r\nHost: a.test\r\n\r\n`);
      assert.equal(r.status, 400);
      assert.equal(problemOf(r).code, 'SLUICE-REQ-004');
      assert.notEqual(r.headers.connection, 'close');
      assert.equal(r.closed, false);
      assert.equal(closingAfterRefusal(last().req), false);
    });

  test('an absolute-form target: its authority replaces Host for what follows', async () => {
    const r = await send('GET http://api.example.com:8080/v1/x?y=2 HTTP/1.1\r\nHost: other.test\r\n\r\n');
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { host: string; path: string; query: string };
    assert.equal(seen.host, 'api.example.com:8080');
    assert.equal(seen.path, '/v1/x');
    assert.equal(seen.query, '?y=2');
  });
});

describe('the request id', () => {
  test("an acceptable X-Request-Id is kept; it names the refusal's instance", async () => {
    const ok = await send('GET /x HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: abc-123.x:y\r\n\r\n');
    assert.equal((JSON.parse(ok.body) as { requestId: string }).requestId, 'abc-123.x:y');
    const refused = await send('GET /../x HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: req-77\r\n\r\n');
    assert.equal(refused.headers['x-request-id'], 'req-77');
    assert.equal(problemOf(refused).instance, 'urn:sluice:request:req-77');
  });

  test('an unacceptable one (spaces, over 200 characters) is replaced by a fresh UUID', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    for (const bad of ['has space', 'x'.repeat(201), 'semi;colon']) {
      const r = await send(`GET /x HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: ${bad}\r\n\r\n`);
      const id = (JSON.parse(r.body) as { requestId: string }).requestId;
      assert.match(id, uuid, bad);
    }
    const none = await send('GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n');
    assert.match((JSON.parse(none.body) as { requestId: string }).requestId, uuid);
  });
});

test('every refusal is finished once: one access-log line with its status and code', async () => {
  const before = dp.access().length;
  await send('GET /x HTTP/1.1\r\nHost: a.test\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n');
  const lines = dp.access().slice(before);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.status, 400);
  assert.equal(lines[0]!.error, 'SLUICE-REQ-009');
  assert.equal(lines[0]!.path, '', 'refused before a path was taken');
});
