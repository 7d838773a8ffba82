import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { test } from 'node:test';
import { clientAddress } from '../../../src/dataplane/headers.js';

const trusted = new BlockList();
trusted.addSubnet('10.0.0.0', 8, 'ipv4');
trusted.addSubnet('fd00::', 8, 'ipv6');

test('the peer is the client unless it is a trusted proxy', () => {
  assert.equal(clientAddress('203.0.113.7', '1.2.3.4', trusted), '203.0.113.7');
  assert.equal(clientAddress('203.0.113.7', '1.2.3.4', undefined), '203.0.113.7');
  assert.equal(clientAddress('10.0.0.2', undefined, trusted), '10.0.0.2');
});

test('behind trusted proxies: the rightmost untrusted X-Forwarded-For entry, never a forged one left of it', () => {
  assert.equal(clientAddress('10.0.0.2', '198.51.100.9', trusted), '198.51.100.9');
  // The client prepended a fake address; the proxy appended the real one.
  assert.equal(clientAddress('10.0.0.2', '1.1.1.1, 198.51.100.9', trusted), '198.51.100.9');
  // Two trusted hops.
  assert.equal(clientAddress('10.0.0.2', '198.51.100.9, 10.0.0.5', trusted), '198.51.100.9');
  assert.equal(clientAddress('fd00::2', '2001:db8::1, fd00::9', trusted), '2001:db8::1');
  // Every hop trusted: the leftmost.
  assert.equal(clientAddress('10.0.0.2', '10.1.1.1, 10.0.0.5', trusted), '10.1.1.1');
  // Garbage stops the walk at the last hop that was an address.
  assert.equal(clientAddress('10.0.0.2', 'nonsense, 10.0.0.5', trusted), '10.0.0.5');
  assert.equal(clientAddress('10.0.0.2', 'nonsense', trusted), '10.0.0.2');
});
