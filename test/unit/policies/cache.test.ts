/**
 * The cache's HTTP rules (Cache-Control parsing, freshness, Vary names, conditionals) and its
 * memory store (LRU within a byte bound, expiry) and Redis value layout, without a gateway.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  freshnessLifetime,
  initialAge,
  noneMatchHits,
  notModifiedSince,
  parseCacheControl,
  responseFacts,
  varyNames,
} from '../../../src/policies/cache/http.js';
import { varyKeyOf } from '../../../src/policies/cache/key.js';
import { decodeItem, type Entry, encodeItem, MemoryStore } from '../../../src/policies/cache/store.js';

describe('Cache-Control', () => {
  test('directives, case-insensitive, with quoted values holding commas', () => {
    const cc = parseCacheControl('Public, MAX-AGE=60, s-maxage="120", private="set-cookie, x-a", no-cache');
    assert.equal(cc.public, true);
    assert.equal(cc.maxAge, 60);
    assert.equal(cc.sMaxAge, 120);
    assert.equal(cc.private, true);
    assert.equal(cc.noCache, true);
    assert.equal(cc.noStore, false);
  });

  test('the first of a repeated directive counts; an invalid number is 0 (stale)', () => {
    assert.equal(parseCacheControl('max-age=5, max-age=500').maxAge, 5);
    assert.equal(parseCacheControl('max-age=abc').maxAge, 0);
    assert.equal(parseCacheControl('max-age=-1').maxAge, 0);
    assert.equal(parseCacheControl('max-age=99999999999').maxAge, 2147483648);
  });

  test('empty or absent: nothing set', () => {
    const cc = parseCacheControl(undefined);
    assert.equal(cc.maxAge, undefined);
    assert.equal(cc.noStore, false);
    assert.equal(parseCacheControl(' , ,').maxAge, undefined);
  });
});

describe('freshness', () => {
  const facts = (h: string[]) => responseFacts(h, h.length);
  const now = Date.parse('Tue, 24 Nov 2026 12:00:00 GMT');

  test('s-maxage over max-age over Expires over the heuristic', () => {
    assert.equal(freshnessLifetime(parseCacheControl('max-age=10, s-maxage=20'), facts([]), now, 99), 20);
    const f = facts(['Expires', 'Tue, 24 Nov 2026 12:01:00 GMT', 'Date', 'Tue, 24 Nov 2026 12:00:00 GMT']);
    assert.equal(freshnessLifetime(parseCacheControl('max-age=10'), f, now, 99), 10);
    assert.equal(freshnessLifetime(parseCacheControl(undefined), f, now, 99), 60);
    assert.equal(freshnessLifetime(parseCacheControl(undefined), facts([]), now, 99), 99);
  });

  test('an invalid Expires is in the past; without Date the response time is the base', () => {
    assert.equal(freshnessLifetime(parseCacheControl(undefined), facts(['expires', '0']), now, 99), 0);
    const f = facts(['expires', 'Tue, 24 Nov 2026 12:00:30 GMT']);
    assert.equal(freshnessLifetime(parseCacheControl(undefined), f, now, 99), 30);
  });

  test('Age on arrival from the Age header only', () => {
    assert.equal(initialAge(facts(['Age', '12'])), 12);
    assert.equal(initialAge(facts(['age', 'x'])), 0);
    assert.equal(initialAge(facts(['Date', 'Tue, 24 Nov 2020 12:00:00 GMT'])), 0);
  });

  test('facts: repeated Cache-Control and Vary lines are joined; Set-Cookie noticed', () => {
    const f = facts([
      'Cache-Control',
      'public',
      'cache-control',
      'max-age=5',
      'Vary',
      'A',
      'vary',
      'B',
      'Set-Cookie',
      'x=1',
    ]);
    assert.equal(f.cacheControl, 'public, max-age=5');
    assert.equal(f.vary, 'A, B');
    assert.equal(f.setCookie, true);
  });
});

describe('Vary and conditionals', () => {
  test('Vary names: lower case, sorted, unique; * wins', () => {
    assert.deepEqual(varyNames('Accept-Encoding, accept-language,Accept-Encoding'), [
      'accept-encoding',
      'accept-language',
    ]);
    assert.deepEqual(varyNames('Origin, *'), ['*']);
    assert.deepEqual(varyNames(' , '), []);
  });

  test('variant key: values per name; absent differs from empty; repeated lines joined', () => {
    const names = ['accept-language', 'x-a'];
    assert.notEqual(varyKeyOf(['Accept-Language', 'en'], names), varyKeyOf(['Accept-Language', ''], names));
    assert.equal(varyKeyOf(['X-A', '1', 'x-a', '2'], names), varyKeyOf(['x-a', '1, 2'], names));
    assert.notEqual(varyKeyOf(['x-a', 'en'], names), varyKeyOf(['accept-language', 'en'], names));
  });

  test('If-None-Match: weak comparison, lists, *; no ETag never matches a tag', () => {
    assert.equal(noneMatchHits('"a"', '"a"'), true);
    assert.equal(noneMatchHits('W/"a"', '"a"'), true);
    assert.equal(noneMatchHits('"a"', 'W/"a"'), true);
    assert.equal(noneMatchHits('"x", "y" ,"a"', '"a"'), true);
    assert.equal(noneMatchHits('"a,b"', '"a,b"'), true);
    assert.equal(noneMatchHits('"a"', '"b"'), false);
    assert.equal(noneMatchHits('*', '"b"'), true);
    assert.equal(noneMatchHits('*', undefined), false);
    assert.equal(noneMatchHits('"a"', undefined), false);
  });

  test('If-Modified-Since: not modified when Last-Modified is not later; bad dates never match', () => {
    const lm = Date.parse('Tue, 24 Nov 2026 12:00:00 GMT');
    assert.equal(notModifiedSince('Tue, 24 Nov 2026 12:00:00 GMT', lm), true);
    assert.equal(notModifiedSince('Tue, 24 Nov 2026 11:59:59 GMT', lm), false);
    assert.equal(notModifiedSince('yesterday', lm), false);
    assert.equal(notModifiedSince('Tue, 24 Nov 2026 12:00:00 GMT', Number.NaN), false);
  });
});

function entry(body: string, extra: Partial<Entry> = {}): Entry {
  return {
    kind: 1,
    status: 200,
    headers: ['content-type', 'text/plain'],
    body: Buffer.from(body),
    storedAt: Date.now(),
    initialAge: 0,
    lifetime: 60,
    etag: undefined,
    lastModified: Number.NaN,
    vary: undefined,
    varyKey: undefined,
    ...extra,
  };
}

describe('memory store', () => {
  test('least recently used entries go first when the byte bound is passed', () => {
    const s = new MemoryStore(1000);
    s.set('a', undefined, entry('x'.repeat(300)), 60_000);
    s.set('b', undefined, entry('x'.repeat(300)), 60_000);
    assert.ok(s.get('a', undefined)); // a is now the most recent
    s.set('c', undefined, entry('x'.repeat(300)), 60_000);
    assert.equal(s.get('b', undefined), undefined);
    assert.ok(s.get('a', undefined));
    assert.ok(s.get('c', undefined));
    assert.ok(s.bytes <= 1000);
    assert.equal(s.evictions, 1);
  });

  test('an item larger than the bound is not kept; replacing a key frees its bytes', () => {
    const s = new MemoryStore(500);
    s.set('big', undefined, entry('x'.repeat(600)), 60_000);
    assert.equal(s.entries, 0);
    s.set('k', undefined, entry('x'.repeat(100)), 60_000);
    const one = s.bytes;
    s.set('k', undefined, entry('x'.repeat(100)), 60_000);
    assert.equal(s.bytes, one);
    s.delete('k');
    assert.equal(s.bytes, 0);
  });

  test('expired items are gone on read; variants live beside their primary key', async () => {
    const s = new MemoryStore(10_000);
    s.set('p', undefined, { kind: 2, names: ['x'] }, 60_000);
    s.set('p', 'v1', entry('one'), 1);
    assert.equal((s.get('p', undefined) as { kind: number }).kind, 2);
    // Not a wait for an event: a 1 ms time-to-live that only time can expire.
    await new Promise((r) => setTimeout(r, 5));
    assert.equal(s.get('p', 'v1'), undefined);
    assert.equal(s.entries, 1);
  });

  test('a smaller bound on reload evicts at once', () => {
    const s = new MemoryStore(10_000);
    for (let i = 0; i < 10; i++) s.set(`k${i}`, undefined, entry('x'.repeat(500)), 60_000);
    s.setMaxBytes(2000);
    assert.ok(s.bytes <= 2000);
    assert.ok(s.get('k9', undefined), 'the newest stay');
  });
});

describe('Redis value layout', () => {
  test('an entry round-trips; its body is a view of the stored value', () => {
    const e = entry('hello', {
      etag: '"e"',
      lastModified: 1_700_000_000_000,
      vary: ['accept-language'],
      varyKey: 'en\n',
      headers: ['content-type', 'text/plain', 'x-ü', 'é'],
    });
    const buf = encodeItem(e);
    const d = decodeItem(buf) as Entry;
    assert.equal(d.body.toString(), 'hello');
    assert.equal(d.body.buffer, buf.buffer, 'no copy of the body');
    assert.deepEqual(d.headers, e.headers);
    assert.equal(d.etag, '"e"');
    assert.equal(d.lastModified, e.lastModified);
    assert.deepEqual(d.vary, ['accept-language']);
    assert.equal(d.varyKey, 'en\n');
    assert.ok(Number.isNaN((decodeItem(encodeItem(entry('x'))) as Entry).lastModified));
  });

  test('a marker round-trips; unreadable values decode to nothing', () => {
    assert.deepEqual(decodeItem(encodeItem({ kind: 2, names: ['a', 'b'] })), { kind: 2, names: ['a', 'b'] });
    assert.equal(decodeItem(Buffer.from('garbage')), undefined);
    assert.equal(decodeItem(Buffer.of(1, 0, 0, 0, 50, 123)), undefined);
    assert.equal(decodeItem(Buffer.alloc(0)), undefined);
  });
});
