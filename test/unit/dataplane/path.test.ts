/** normalizePath and splitTarget on their own: the rules of docs/routing.md#path-normalisation. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizePath, type PathOptions, splitTarget } from '../../../src/dataplane/path.js';
import { validHost } from '../../../src/dataplane/request-head.js';

const reject: PathOptions = { rejectEncodedSlashes: true, mergeSlashes: true, rejectMatrixParams: true };
const keep: PathOptions = { rejectEncodedSlashes: false, mergeSlashes: false, rejectMatrixParams: false };

/** The defaults, except matrix parameters kept (to reach the rules behind that first check). */
const matrix: PathOptions = { ...reject, rejectMatrixParams: false };

function refused(path: string, opts: PathOptions = reject): string {
  const r = normalizePath(path, opts);
  assert.equal(typeof r, 'object', `${JSON.stringify(path)} was accepted as ${JSON.stringify(r)}`);
  return (r as { error: string }).error;
}

describe('normalizePath', () => {
  test('a canonical path is returned as is', () => {
    for (const p of ['/', '/a', '/a/b/c', "/a-b_c.d~e/!$&'()*+,=:@", '/a/b/', '/.well-known/x', '/a..b'])
      assert.equal(normalizePath(p, reject), p);
    assert.equal(normalizePath('/a;b=c/d', matrix), '/a;b=c/d');
  });

  test('refused by default: a raw ; (matrix parameters), which servlet upstreams strip after routing', () => {
    for (const p of ['/admin;x/secret', '/a;', '/a/b;jsessionid=1', '/;/admin'])
      assert.match(refused(p), /matrix parameters/, p);
    // Encoded, it is data: kept encoded, never a parameter delimiter.
    assert.equal(normalizePath('/a%3Bb', reject), '/a%3Bb');
    assert.equal(normalizePath('/a%3bb', reject), '/a%3Bb');
  });

  const cases: [string, string][] = [
    ['/a/./b', '/a/b'],
    ['/a/../b', '/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a/%2e%2e/b', '/b'],
    ['/a/%2E%2e/b', '/b'],
    ['/a/.%2E/b', '/b'],
    ['/a/%2e/b', '/a/b'],
    ['//a///b//', '/a/b/'],
    ['/%41%62%7e%2D%5f', '/Ab~-_'],
    ['/%e9%c3', '/%E9%C3'],
    ['/a%20b', '/a%20b'],
    ['/a%3bb', '/a%3Bb'],
    ['/%252e%252e/x', '/%252e%252e/x'],
    ['/a/...', '/a/...'],
    ['/a/.../..', '/a/'],
    ['/a"b<c>', '/a%22b%3Cc%3E'],
    ['/a{b}|c^`', '/a%7Bb%7D%7Cc%5E%60'],
  ];
  for (const [from, to] of cases)
    test(`${from} → ${to}`, () => {
      assert.equal(normalizePath(from, reject), to);
    });

  test('refused: anything that does not start with /', () => {
    for (const p of ['', 'a', '*', '%2F']) assert.match(refused(p), /start with \//);
  });

  test('refused: climbing above the root', () => {
    for (const p of ['/..', '/../a', '/a/../..', '/%2e%2e', '/a/%2E%2E/%2e%2e/b'])
      assert.match(refused(p), /above the root/);
  });

  test('refused: dot-segments with parameters, raw or encoded ;', () => {
    for (const p of ['/..;/a', '/a/..;x', '/.;/a', '/%2e%2e;/a', '/..%3B/a', '/..%3bx', '/.%3B', '/%2e%3b'])
      assert.match(refused(p, matrix), /parameters/, p);
    // Not a dot-segment: kept.
    assert.equal(normalizePath('/a;b/..x;y', matrix), '/a;b/..x;y');
    assert.equal(normalizePath('/...;x', matrix), '/...;x');
  });

  test('refused: backslash, NUL, control characters, invalid escapes', () => {
    assert.match(refused('/a\\b'), /backslash/);
    assert.match(refused('/a%00'), /NUL/);
    assert.match(refused('/a\x01'), /control/);
    assert.match(refused('/a\x7f'), /control/);
    for (const p of ['/%', '/%2', '/%zz', '/%g1', '/a%2']) assert.match(refused(p), /percent-encoding/, p);
  });

  test('encoded slashes: refused by default', () => {
    for (const p of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%5cb']) assert.match(refused(p), /encoded slash/);
  });

  test('encoded slashes: kept encoded and opaque with keep', () => {
    assert.equal(normalizePath('/a%2fb', keep), '/a%2Fb');
    assert.equal(normalizePath('/a%5cb/c', keep), '/a%5Cb/c');
    assert.equal(normalizePath('/a%2F/../b', keep), '/b');
  });

  test('encoded slashes kept: a dot-segment between them is refused', () => {
    for (const p of ['/a%2F..%2Fb', '/..%2Fa', '/a%2F.', '/a%5C..', '/%2e%2e%2fa', '/a%2F..;x%2Fb'])
      assert.match(refused(p, keep), /encoded slashes/, p);
    assert.equal(normalizePath('/a%2F...%2Fb', keep), '/a%2F...%2Fb');
  });

  test('mergeSlashes: false keeps empty segments', () => {
    assert.equal(normalizePath('//a//b', keep), '//a//b');
    assert.equal(normalizePath('/a//../b', keep), '/a/b');
  });

  test('the result is a fixed point: normalising it again changes nothing', () => {
    for (const [from] of cases) {
      const once = normalizePath(from, reject) as string;
      assert.equal(normalizePath(once, reject), once, from);
    }
  });
});

describe('splitTarget', () => {
  test('origin-form', () => {
    assert.deepEqual(splitTarget('/a/b?x=1&y'), { path: '/a/b', query: '?x=1&y', authority: undefined });
    assert.deepEqual(splitTarget('/a'), { path: '/a', query: '', authority: undefined });
    assert.deepEqual(splitTarget('/a?'), { path: '/a', query: '?', authority: undefined });
    assert.deepEqual(splitTarget('/a?b?c'), { path: '/a', query: '?b?c', authority: undefined });
  });

  test('absolute-form gives its path and authority', () => {
    assert.deepEqual(splitTarget('http://h.example:8080/a?q'), {
      path: '/a',
      query: '?q',
      authority: 'h.example:8080',
    });
    assert.deepEqual(splitTarget('HTTPS://h'), { path: '/', query: '', authority: 'h' });
    assert.deepEqual(splitTarget('http://h?q=1'), { path: '/', query: '?q=1', authority: 'h' });
  });

  test('anything else is not a target', () => {
    for (const t of ['*', 'a/b', 'http:/a', '1http://h/', '']) assert.equal(splitTarget(t), undefined, t);
  });
});

describe('validHost', () => {
  test('host, host:port, IP literals and an empty Host are valid', () => {
    for (const h of ['a.example', 'a.example:8080', '127.0.0.1:1', '[::1]:8080', 'xn--bcher-kva.example', ''])
      assert.ok(validHost(h), h);
  });
  test('paths, userinfo, spaces, quotes and non-ASCII are not', () => {
    for (const h of ['a/b', 'u@a', 'a b', 'a"b', 'a\\b', 'a?b', 'a#b', 'b\u00fccher.example', 'a\tb'])
      assert.ok(!validHost(h), h);
  });
});
