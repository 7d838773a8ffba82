/** `ipFilter` config and decisions: CIDR parsing (strict), errors at load, deny over allow, IPv4-mapped IPv6. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfigText } from '../../../src/config/load.js';
import { Errors } from '../../../src/errors/codes.js';
import { cidrProblem, parseCidrStrict } from '../../../src/policies/ip-filter/cidr.js';
import { compileIpFilter } from '../../../src/policies/ip-filter/index.js';
import type { Denial, RequestContext } from '../../../src/policies/policy.js';
import { configErrors } from '../../harness/config-errors.js';

const withFilter = (f: string) => `listen: { host: 127.0.0.1, port: 8080 }
upstreams:
  up: { targets: [ { url: "http://127.0.0.1:9000" } ] }
routes:
  - name: api
    match: { path: { prefix: /api } }
    upstream: up
    ipFilter:
${f}
`;

test('CIDR blocks: addresses, v4 and v6 blocks; host bits after the prefix are a typo with the fix named', () => {
  assert.deepEqual(parseCidrStrict('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseCidrStrict('203.0.113.7'), { address: '203.0.113.7', prefix: 32, family: 'ipv4' });
  assert.deepEqual(parseCidrStrict('2001:db8::/32'), { address: '2001:db8::', prefix: 32, family: 'ipv6' });
  assert.deepEqual(parseCidrStrict('::1'), { address: '::1', prefix: 128, family: 'ipv6' });
  assert.ok(parseCidrStrict('::ffff:10.0.0.0/104'));
  assert.ok(parseCidrStrict('0.0.0.0/0'));
  assert.ok(parseCidrStrict('::/0'));
  for (const bad of [
    '10.0.0.0/33',
    '10.0.0.0/',
    '10.0.0.0/-1',
    '10.0.0.0/8/8',
    '10.0.0',
    'fe80::1%eth0',
    '::/129',
    'x',
  ])
    assert.equal(parseCidrStrict(bad), undefined, bad);
  assert.equal(parseCidrStrict('192.168.1.1/16'), undefined);
  assert.match(cidrProblem('192.168.1.1/16'), /write 192\.168\.0\.0\/16/);
  assert.match(cidrProblem('2001:db8::1/32'), /write 2001:db8::\/32/);
  assert.match(cidrProblem('nope'), /not an IP address or CIDR block/);
});

test('allow and deny lists of addresses and blocks, v4 and v6, load', () => {
  const { config } = loadConfigText(
    withFilter('      allow: [10.0.0.0/8, 192.0.2.7, "2001:db8::/32", "::1"]\n      deny: [10.6.6.0/24]'),
    'conf.yaml',
    {},
  );
  assert.deepEqual(config.routes[0]!.ipFilter!.deny, ['10.6.6.0/24']);
});

test('bad entries and an empty filter are refused at load with file, line and path', () => {
  const errs = configErrors(withFilter('      allow: [10.0.0.0/8, 10.0.0.1/8]\n      deny: [bogus]'));
  assert.deepEqual(
    errs.map((e) => [e.path, e.line]),
    [
      ['/routes/0/ipFilter/allow/1', 9],
      ['/routes/0/ipFilter/deny/0', 10],
    ],
  );
  const empty = configErrors(withFilter('      {}'));
  assert.equal(empty[0]!.path, '/routes/0/ipFilter');
  assert.match(empty[0]!.message, /set `allow` and\/or `deny`/);
});

function decide(f: { allow?: string[]; deny?: string[] }, client: string): Denial | undefined {
  const p = compileIpFilter(f);
  return p.onRequest!({ client } as RequestContext) as Denial | undefined;
}

test('deny wins over allow; an allow list refuses everyone else; no lists means no opinion', () => {
  const f = { allow: ['10.0.0.0/8', '2001:db8::/32'], deny: ['10.6.6.0/24'] };
  assert.equal(decide(f, '10.1.2.3'), undefined);
  assert.equal(decide(f, '2001:db8::5'), undefined);
  assert.equal(decide(f, '10.6.6.6')?.reason, 'denied');
  assert.equal(decide(f, '10.6.6.6')?.def, Errors.ipDenied);
  assert.equal(decide(f, '192.0.2.1')?.reason, 'not_allowed');
  assert.equal(decide(f, '2001:db9::1')?.reason, 'not_allowed');
  assert.equal(decide({ deny: ['192.0.2.0/24'] }, '192.0.2.9')?.reason, 'denied');
  assert.equal(decide({ deny: ['192.0.2.0/24'] }, '198.51.100.1'), undefined);
  assert.equal(decide({ allow: ['10.0.0.0/8'] }, '')?.reason, 'unknown');
});

test('IPv4-mapped IPv6 addresses match IPv4 rules and the other way round', () => {
  assert.equal(decide({ allow: ['10.0.0.0/8'] }, '::ffff:10.1.2.3'), undefined);
  assert.equal(decide({ allow: ['10.0.0.0/8'] }, '::ffff:a01:203'), undefined);
  assert.equal(decide({ deny: ['10.0.0.0/8'] }, '::ffff:10.1.2.3')?.reason, 'denied');
  assert.equal(decide({ deny: ['::ffff:10.0.0.0/104'] }, '10.9.9.9')?.reason, 'denied');
  assert.equal(decide({ allow: ['::ffff:10.0.0.0/104'] }, '11.0.0.1')?.reason, 'not_allowed');
});
