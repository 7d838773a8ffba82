/**
 * Request smuggling and size limits, over raw sockets. Every ambiguous or malformed request gets
 * exactly one 400 application/problem+json with a stable code, is never forwarded (the upstream
 * sees nothing, not even the request smuggled behind it), and the connection is closed.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { waitFor, waitForLog } from '../harness/flow.js';
import { startGateway, type TestGateway } from '../harness/gateway.js';
import { parseResponse, type RawResponse } from '../harness/raw.js';
import { startUpstream, type TestUpstream } from '../harness/upstream.js';

interface Exchange {
  /** The first response. */
  res: RawResponse;
  /** How many responses arrived on the connection. */
  responses: number;
  /** The server closed (or reset) the connection before the timeout. */
  closed: boolean;
  reset: boolean;
}

/**
 * Write `parts` (pausing between them so each is its own read on the server), then read until the
 * server closes the connection or `timeoutMs` passes. The timeout is a bound, not a wait: every
 * case here ends with the server closing (or answering with Connection: close), which ends the read
 * first; it is generous so that a loaded machine cannot turn a slow close into "not closed".
 */
function exchange(port: number, parts: (string | Buffer)[], timeoutMs = 20_000): Promise<Exchange> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let reset = false;
    const finish = (closed: boolean) => {
      clearTimeout(timer);
      s.destroy();
      const raw = Buffer.concat(chunks).toString('latin1');
      resolve({
        res: parseResponse(raw),
        responses: raw.match(/HTTP\/1\.[01] \d{3} /g)?.length ?? 0,
        closed,
        reset,
      });
    };
    // The bound described above, cleared by finish().
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => {
      reset = true;
      finish(true);
    });
    s.on('connect', async () => {
      for (const p of parts) {
        if (s.destroyed) return;
        s.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
        // Pacing, not synchronisation: the parts are meant to arrive as separate reads (a head
        // accepted, then its broken body). Should two coalesce on a loaded machine, the bytes are the
        // same and every assertion still holds (the gateway may then refuse before forwarding).
        if (parts.length > 1) await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: gw.test\r\n\r\n';

interface Recorder {
  up: TestUpstream;
  /** Each request the upstream received, and how its body ended. */
  exchanges: { url: string; state: 'open' | 'complete' | 'aborted'; bytes: number }[];
}

/** An upstream that records whether each request body arrived complete or was aborted. */
async function recordingUpstream(): Promise<Recorder> {
  const exchanges: Recorder['exchanges'] = [];
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    const e: Recorder['exchanges'][number] = { url: req.url ?? '', state: 'open', bytes: 0 };
    exchanges.push(e);
    req.on('data', (c: Buffer) => {
      e.bytes += c.length;
    });
    req.on('end', () => {
      e.state = 'complete';
      res.end(String(e.bytes));
    });
    req.on('close', () => {
      if (e.state === 'open') e.state = 'aborted';
    });
  });
  return { up, exchanges };
}

let up: TestUpstream;
let gw: TestGateway;
before(async () => {
  up = await startUpstream();
  gw = await startGateway({
    listen: { host: '127.0.0.1', port: 0 },
    admin: { host: '127.0.0.1', port: 0 },
    upstreams: { up: { targets: [{ url: up.url }] } },
    routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
  });
});
after(async () => {
  await gw.stop();
  await up.close();
});

async function assertRefused(bytes: string, code: string): Promise<void> {
  const before = up.seen.length;
  assert.ok(bytes.includes(smuggled) || !bytes.startsWith('POST'), 'a body case carries a smuggled request');
  const x = await exchange(gw.port, [bytes]);
  assert.equal(x.res.status, 400, `status; got ${JSON.stringify(x.res.raw.slice(0, 200))}`);
  assert.equal(x.res.headers['content-type'], 'application/problem+json');
  const p = JSON.parse(x.res.body) as { code: string; status: number; type: string };
  assert.equal(p.code, code);
  assert.equal(p.status, 400);
  assert.equal(x.responses, 1, 'exactly one response on the connection');
  assert.ok(x.closed, 'the gateway closed the connection');
  assert.equal(x.res.headers.connection, 'close');
  assert.deepEqual(
    up.seen.slice(before).map((s) => s.url),
    [],
    'nothing reached the upstream',
  );
}

describe('ambiguous framing: 400 SLUICE-REQ-002', () => {
  const cases: [string, string][] = [
    [
      'Content-Length and Transfer-Encoding',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding and Content-Length',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'two differing Content-Length',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    ],
    [
      'two equal Content-Length',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab${smuggled}`,
    ],
    [
      'a Content-Length list',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 2, 2\r\n\r\nab${smuggled}`,
    ],
    [
      'a negative Content-Length',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: -1\r\n\r\n${smuggled}`,
    ],
    [
      'a signed Content-Length',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: +2\r\n\r\nab${smuggled}`,
    ],
    [
      'Transfer-Encoding: chunked, identity',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding: identity, chunked',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding: xchunked',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding: "chunked"',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: "chunked"\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding: chunked, (trailing comma)',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'two Transfer-Encoding headers',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding in an HTTP/1.0 request',
      `POST /a HTTP/1.0\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer_Encoding (underscore look-alike)',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Content_Length (underscore look-alike)',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent_Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    ],
  ];
  for (const [name, bytes] of cases) test(name, () => assertRefused(bytes, 'SLUICE-REQ-002'));
});

describe('invalid header bytes and obsolete syntax: 400 SLUICE-REQ-003', () => {
  const cases: [string, string][] = [
    [
      'Transfer-Encoding : chunked (space before the colon)',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'a tab before the colon',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'a vertical tab before chunked',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'a form feed before chunked',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: \x0cchunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    [
      'Transfer-Encoding folded onto the next line',
      `POST /a HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    ],
    ['obs-fold with a space', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\r\n b\r\n\r\n${smuggled}`],
    ['obs-fold with a tab', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\r\n\tb\r\n\r\n${smuggled}`],
    ['a first header line starting with a space', `GET /a HTTP/1.1\r\n Host: gw.test\r\n\r\n${smuggled}`],
    ['a ( in a header name', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX(Y: 1\r\n\r\n${smuggled}`],
    ['a space in a header name', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX Y: 1\r\n\r\n${smuggled}`],
    ['a control byte in a header name', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX\x01Y: 1\r\n\r\n${smuggled}`],
    ['a non-ASCII header name', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-\xe9: 1\r\n\r\n${smuggled}`],
    ['an empty header name', `GET /a HTTP/1.1\r\nHost: gw.test\r\n: 1\r\n\r\n${smuggled}`],
    ['a header line without a colon', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A\r\n\r\n${smuggled}`],
    ['a NUL in a header value', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\x00b\r\n\r\n${smuggled}`],
    ['a NUL in a header name', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX\x00A: b\r\n\r\n${smuggled}`],
    [
      'a control byte in a header value',
      `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\x01b\r\n\r\n${smuggled}`,
    ],
    ['DEL in a header value', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\x7fb\r\n\r\n${smuggled}`],
    ['a bare CR in a header value', `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\rb\r\n\r\n${smuggled}`],
    ['a bare LF ending a header line', `GET /a HTTP/1.1\r\nHost: gw.test\nX-A: b\r\n\r\n${smuggled}`],
    ['a bare LF ending the head', `GET /a HTTP/1.1\r\nHost: gw.test\r\n\n`],
    ['no Host in an HTTP/1.1 request', `GET /a HTTP/1.1\r\nX-A: b\r\n\r\n${smuggled}`],
    ['two Host headers', `GET /a HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\n\r\n${smuggled}`],
    ['a Host with a path', `GET /a HTTP/1.1\r\nHost: gw.test/admin\r\n\r\n${smuggled}`],
    ['a Host with userinfo', `GET /a HTTP/1.1\r\nHost: user@gw.test\r\n\r\n${smuggled}`],
    ['a Host with a space', `GET /a HTTP/1.1\r\nHost: gw.test other\r\n\r\n${smuggled}`],
  ];
  for (const [name, bytes] of cases) test(name, () => assertRefused(bytes, 'SLUICE-REQ-003'));
});

test('a WebSocket upgrade pipelined behind a refused request is not forwarded either', () =>
  assertRefused(
    'GET /a HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\n\r\n' +
      'GET /smuggled-ws HTTP/1.1\r\nHost: gw.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    'SLUICE-REQ-003',
  ));

describe('malformed request line: 400 SLUICE-REQ-001', () => {
  const cases: [string, string][] = [
    ['bare LF line endings everywhere', `GET /a HTTP/1.1\nHost: gw.test\n\n`],
    ['a bare LF after the request line', `GET /a HTTP/1.1\nHost: gw.test\r\n\r\n`],
    ['an invalid method', `G(T /a HTTP/1.1\r\nHost: gw.test\r\n\r\n`],
    ['an unknown HTTP version', `GET /a HTTP/1.7\r\nHost: gw.test\r\n\r\n`],
    ['a space in the target', `GET /a b HTTP/1.1\r\nHost: gw.test\r\n\r\n`],
  ];
  for (const [name, bytes] of cases) test(name, () => assertRefused(bytes, 'SLUICE-REQ-001'));
});

test('no smuggled request reaches the upstream, not even late', async () => {
  // Its own attempts, one of each kind of refusal, each with a request smuggled behind it.
  const attempts = [
    `POST /a HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    `GET /a HTTP/1.1\r\nHost: gw.test\r\nX-A: a\r\n b\r\n\r\n${smuggled}`,
    `GET /a HTTP/1.1\r\nHost: gw.test\r\nHost: other.test\r\n\r\n${smuggled}`,
    `GET /a b HTTP/1.1\r\nHost: gw.test\r\n\r\n${smuggled}`,
  ];
  for (const bytes of attempts) {
    const x = await exchange(gw.port, [bytes]);
    assert.equal(x.res.status, 400, JSON.stringify(x.res.raw.slice(0, 200)));
    assert.ok(x.closed, 'the gateway closed the connection');
  }
  // The positive marker instead of a sleep: a later request through the same gateway and upstream
  // reaches it, and then the gateway has nothing in flight (an exchange is counted from its first
  // wait until it ends, and a forwarded request reaches the upstream before it ends). Anything
  // those connections had made the gateway forward would have arrived by now.
  const marker = await exchange(gw.port, [
    'GET /marker HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n',
  ]);
  assert.equal(marker.res.status, 200);
  await waitFor(() => up.seen.some((s) => s.url === '/marker'), 'the marker at the upstream', 15_000);
  await waitFor(
    () => gw.gw.inflight === 0 && gw.gw.upgraded.size === 0,
    'nothing in flight in the gateway',
    15_000,
  );
  // Nothing of a refused connection, from this test or any before it in this file.
  assert.deepEqual(
    up.seen.filter((s) => s.url.startsWith('/smuggled') || s.url === '/a').map((s) => s.url),
    [],
  );
});

test('valid but unusual framing is parsed one way only: a tab before chunked, upper case', async () => {
  const before = up.seen.length;
  const x = await exchange(gw.port, [
    'POST /tab HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding:\tCHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n' +
      'GET /second HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n',
  ]);
  assert.equal(x.responses, 2);
  assert.equal(x.res.status, 200);
  const first = x.res.body.slice(0, Number(x.res.headers['content-length']));
  assert.equal((JSON.parse(first) as { body: string }).body, 'hello');
  assert.deepEqual(
    up.seen.slice(before).map((s) => s.url),
    ['/tab', '/second'],
  );
});

describe('broken chunk framing after the head was accepted', () => {
  let rec: Recorder;
  let gw2: TestGateway;
  before(async () => {
    rec = await recordingUpstream();
    gw2 = await startGateway({
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { up: { targets: [{ url: rec.up.url }] } },
      routes: [{ name: 'all', match: { path: { prefix: '/' } }, upstream: 'up' }],
    });
  });
  after(async () => {
    await gw2.stop();
    await rec.up.close();
  });

  const cases: [string, string][] = [
    ['an invalid chunk size', 'zz\r\n'],
    ['a bare LF after the chunk size', '5\nhello\r\n0\r\n\r\n'],
    ['a chunk size that overflows', 'fffffffffffffffffffff\r\n'],
    ['chunk data longer than its size', '5\r\nhello, world\r\n0\r\n\r\n'],
  ];
  for (const [name, tail] of cases) {
    test(`${name}: 400 SLUICE-REQ-001 or a reset, and the upstream never sees a complete request`, async () => {
      const from = rec.exchanges.length;
      const x = await exchange(gw2.port, [
        'POST /chunked HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n',
        tail,
      ]);
      assert.ok(x.closed, 'the connection is closed');
      assert.ok(x.responses <= 1, 'at most one response');
      // The answer, or a reset that lost it (the gateway closing with bytes unread): never a silent
      // close without either.
      if (x.res.status === 0) assert.ok(x.reset, `no answer and no reset: ${JSON.stringify(x.res.raw)}`);
      else {
        assert.equal(x.res.status, 400);
        assert.equal(x.res.headers['content-type'], 'application/problem+json');
        assert.equal((JSON.parse(x.res.body) as { code: string }).code, 'SLUICE-REQ-001');
      }
      // Bodies stream, so the head may have been forwarded; if so, its body must end in an abort.
      const mine = rec.exchanges.slice(from);
      await waitFor(() => mine.every((e) => e.state !== 'open'), 'the upstream request to end', 15_000);
      for (const e of mine) assert.equal(e.state, 'aborted', 'the upstream received a complete request');
    });
  }
});

describe('size limits', () => {
  let rec: Recorder;
  let gw3: TestGateway;
  before(async () => {
    rec = await recordingUpstream();
    gw3 = await startGateway({
      listen: { host: '127.0.0.1', port: 0, maxHeaderBytes: '4kb' },
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: { up: { targets: [{ url: rec.up.url }] } },
      routes: [
        { name: 'small', match: { path: { prefix: '/small' } }, upstream: 'up', maxBodyBytes: 1024 },
        { name: 'other', match: { path: { prefix: '/' } }, upstream: 'up' },
      ],
    });
  });
  after(async () => {
    await gw3.stop();
    await rec.up.close();
  });

  test('a body at the limit passes whole', async () => {
    const x = await exchange(gw3.port, [
      `POST /small HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1024\r\nConnection: close\r\n\r\n${'a'.repeat(1024)}`,
    ]);
    assert.equal(x.res.status, 200);
    assert.equal(x.res.body, '1024');
  });

  test('a declared Content-Length over maxBodyBytes is a 413 before any body byte is read', async () => {
    const from = rec.exchanges.length;
    // Only the head is sent: the answer cannot depend on the body.
    const x = await exchange(gw3.port, [
      'POST /small HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 1025\r\n\r\n',
    ]);
    assert.equal(x.res.status, 413);
    assert.equal(x.res.headers['content-type'], 'application/problem+json');
    assert.equal((JSON.parse(x.res.body) as { code: string }).code, 'SLUICE-REQ-005');
    assert.ok(x.closed, 'the connection is closed');
    assert.equal(rec.exchanges.length, from, 'the upstream was not contacted');
  });

  test('a chunked body that grows past maxBodyBytes is cut: 413 or a reset, never a complete request upstream', async () => {
    const from = rec.exchanges.length;
    const logFrom = gw3.logs.length;
    const chunk = `200\r\n${'b'.repeat(512)}\r\n`;
    const x = await exchange(gw3.port, [
      'POST /small HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\n\r\n',
      chunk,
      chunk,
      chunk,
      chunk,
    ]);
    assert.ok(x.closed, 'the connection is closed');
    // The answer, or a reset that lost it (the client still writing chunks the gateway will not
    // read): never a silent close without either.
    if (x.res.status === 0) assert.ok(x.reset, `no answer and no reset: ${JSON.stringify(x.res.raw)}`);
    else {
      assert.equal(x.res.status, 413);
      assert.equal((JSON.parse(x.res.body) as { code: string }).code, 'SLUICE-REQ-005');
    }
    // Whatever the client saw, the gateway refused the request as too large.
    await waitForLog(
      gw3,
      (l) => l.type === 'access' && l.path === '/small' && l.status === 413 && l.error === 'body_too_large',
      'the 413 access line',
      15_000,
      logFrom,
    );
    const mine = rec.exchanges.slice(from);
    // Whatever reached the upstream ended in an abort, never as a complete request.
    await waitFor(() => mine.every((e) => e.state !== 'open'), 'the upstream request to end', 15_000);
    for (const e of mine) {
      assert.equal(e.state, 'aborted');
      assert.ok(e.bytes <= 1024, `the upstream received ${e.bytes} bytes`);
    }
  });

  test('a chunked body under the limit passes whole', async () => {
    const x = await exchange(gw3.port, [
      'POST /small HTTP/1.1\r\nHost: gw.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
      `200\r\n${'c'.repeat(512)}\r\n`,
      `200\r\n${'c'.repeat(512)}\r\n0\r\n\r\n`,
    ]);
    assert.equal(x.res.status, 200);
    assert.equal(x.res.body, '1024');
  });

  test('request headers over listen.maxHeaderBytes get 431 SLUICE-REQ-006 and reach no upstream', async () => {
    const from = rec.exchanges.length;
    const x = await exchange(gw3.port, [
      `GET /big HTTP/1.1\r\nHost: gw.test\r\nX-Big: ${'x'.repeat(5000)}\r\n\r\n`,
    ]);
    assert.equal(x.res.status, 431);
    assert.equal(x.res.headers['content-type'], 'application/problem+json');
    assert.equal((JSON.parse(x.res.body) as { code: string }).code, 'SLUICE-REQ-006');
    assert.ok(x.closed);
    assert.equal(rec.exchanges.length, from);
  });

  test('many headers that together pass the limit also get 431', async () => {
    const from = rec.exchanges.length;
    let head = 'GET /many HTTP/1.1\r\nHost: gw.test\r\n';
    for (let i = 0; i < 100; i++) head += `X-H${i}: ${'y'.repeat(50)}\r\n`;
    const x = await exchange(gw3.port, [`${head}\r\n`]);
    assert.equal(x.res.status, 431);
    assert.equal(rec.exchanges.length, from);
  });

  test('headers just under the limit pass', async () => {
    const x = await exchange(gw3.port, [
      `GET /fits HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\nX-Big: ${'x'.repeat(3000)}\r\n\r\n`,
    ]);
    assert.equal(x.res.status, 200);
  });
});
