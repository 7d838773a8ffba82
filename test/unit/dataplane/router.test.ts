/**
 * The compiled route table on its own: which route wins (docs/routing.md#which-route-wins), path
 * kinds and parameters, methods and header conditions, without a gateway around it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  compilePathMatch,
  type HeaderCondition,
  type Matchable,
  Router,
} from '../../../src/dataplane/router.js';

type PathMatch = Parameters<typeof compilePathMatch>[0];

let index = 0;
function route(
  name: string,
  o: {
    path?: PathMatch;
    hosts?: string[];
    methods?: string[];
    priority?: number;
    headers?: Record<string, string>;
  } = {},
): Matchable {
  const headerConditions: HeaderCondition[] = Object.entries(o.headers ?? {}).map(([n, v]) => ({
    name: n,
    test: (value) => value === v,
  }));
  return {
    name,
    index: index++,
    priority: o.priority ?? 0,
    hosts: o.hosts,
    methods: o.methods,
    headerConditions,
    ...compilePathMatch(o.path),
  };
}

const noHeaders = { headers: {} };
function winner(r: Router<Matchable>, path: string, host?: string, method = 'GET', headers = noHeaders) {
  return r.match(host, method, path, headers)?.route.name;
}

describe('path kinds', () => {
  test('a prefix is segment-bounded: /api matches /api and /api/x, never /apix; /api/ is a plain prefix', () => {
    const r = new Router([route('api', { path: { prefix: '/api' } })]);
    assert.equal(winner(r, '/api'), 'api');
    assert.equal(winner(r, '/api/x'), 'api');
    assert.equal(winner(r, '/apix'), undefined);
    const slash = new Router([route('slash', { path: { prefix: '/api/' } })]);
    assert.equal(winner(slash, '/api/x'), 'slash');
    assert.equal(winner(slash, '/api'), undefined);
  });

  test('patterns bind parameters and a trailing * takes the rest', () => {
    const r = new Router([
      route('user', { path: { pattern: '/users/:id' } }),
      route('files', { path: { pattern: '/files/:bucket/*' } }),
    ]);
    assert.deepEqual(r.match(undefined, 'GET', '/users/42', noHeaders)?.params, { id: '42' });
    assert.equal(winner(r, '/users/42/more'), undefined, 'a pattern without * matches whole paths only');
    assert.equal(winner(r, '/users/'), undefined, 'an empty segment does not bind a parameter');
    assert.deepEqual(r.match(undefined, 'GET', '/files/b1/a/b.txt', noHeaders)?.params, {
      bucket: 'b1',
      '*': 'a/b.txt',
    });
  });
});

describe('which route wins', () => {
  test('exact beats pattern beats prefix beats no path; a longer prefix beats a shorter one', () => {
    const r = new Router([
      route('any'),
      route('short', { path: { prefix: '/a' } }),
      route('long', { path: { prefix: '/a/b' } }),
      route('pattern', { path: { pattern: '/a/:x' } }),
      route('exact', { path: { exact: '/a/b' } }),
    ]);
    assert.equal(winner(r, '/a/b'), 'exact');
    assert.equal(winner(r, '/a/c'), 'pattern');
    assert.equal(winner(r, '/a/b/c'), 'long');
    assert.equal(winner(r, '/a'), 'short');
    assert.equal(winner(r, '/z'), 'any');
  });

  test('a pattern with more literal segments beats one with fewer', () => {
    const r = new Router([
      route('params', { path: { pattern: '/:a/:b' } }),
      route('literal', { path: { pattern: '/users/:id' } }),
    ]);
    assert.equal(winner(r, '/users/1'), 'literal');
    assert.equal(winner(r, '/teams/1'), 'params');
  });

  test('priority beats path specificity; equal routes keep file order', () => {
    const r = new Router([
      route('exact', { path: { exact: '/x' } }),
      route('urgent', { path: { prefix: '/' }, priority: 10 }),
    ]);
    assert.equal(winner(r, '/x'), 'urgent');
    const tie = new Router([
      route('first', { path: { prefix: '/' } }),
      route('second', { path: { prefix: '/' } }),
    ]);
    assert.equal(winner(tie, '/x'), 'first');
  });

  test('more header conditions first; a route whose condition fails falls through to the next', () => {
    const r = new Router([
      route('plain', { path: { prefix: '/' } }),
      route('beta', { path: { prefix: '/' }, headers: { 'x-beta': '1' } }),
    ]);
    assert.equal(winner(r, '/x', undefined, 'GET', { headers: { 'x-beta': '1' } }), 'beta');
    assert.equal(winner(r, '/x', undefined, 'GET', { headers: { 'x-beta': '2' } }), 'plain');
    assert.equal(winner(r, '/x'), 'plain');
  });
});

describe('hosts and methods', () => {
  test('exact host beats the longest wildcard beats no host; each class is tried only when the better one has no match', () => {
    const r = new Router([
      route('anyhost', { path: { prefix: '/' } }),
      route('wild', { hosts: ['*.example.com'], path: { prefix: '/' } }),
      route('deeper', { hosts: ['*.eu.example.com'], path: { prefix: '/' } }),
      route('exact', { hosts: ['api.example.com'], path: { prefix: '/only' } }),
    ]);
    assert.equal(winner(r, '/only', 'api.example.com'), 'exact');
    assert.equal(winner(r, '/other', 'api.example.com'), 'wild', 'the exact host has no route for it');
    assert.equal(winner(r, '/x', 'a.eu.example.com'), 'deeper');
    assert.equal(winner(r, '/x', 'example.com'), 'anyhost', 'a wildcard needs a label before its suffix');
    assert.equal(winner(r, '/x'), 'anyhost');
  });

  test('hosts match case-insensitively, with or without a port', () => {
    const r = new Router([route('exact', { hosts: ['api.example.com'] }), route('other')]);
    assert.equal(winner(r, '/', 'API.Example.COM'), 'exact');
    assert.equal(winner(r, '/', 'api.example.com:8443'), 'exact');
    assert.equal(winner(r, '/', '[::1]:8080'), 'other');
  });

  test('a method list restricts a route; routes without one take every method', () => {
    const r = new Router([
      route('reads', { path: { prefix: '/' }, methods: ['GET', 'HEAD'] }),
      route('rest', { path: { prefix: '/' } }),
    ]);
    assert.equal(winner(r, '/x', undefined, 'GET'), 'reads');
    assert.equal(winner(r, '/x', undefined, 'POST'), 'rest');
    assert.equal(winner(r, '/x', undefined, 'DELETE'), 'rest');
  });
});
