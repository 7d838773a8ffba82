/** The balancer an upstream's config names, compiled once into a factory over target lists. */
import type { BlockList } from 'node:net';
import type { BalancerConfig } from '../schema.js';
import type { BalancerFactory, KeyExtractor } from './balancer.js';
import { ConsistentHash } from './consistent-hash.js';
import { clientIpKey, cookieKey, headerKey } from './hash-key.js';
import { LeastRequest } from './least-request.js';
import { RoundRobin } from './round-robin.js';
import { SmoothWeighted } from './weighted.js';

export function compileBalancer(
  cfg: BalancerConfig | undefined,
  deps: { trustedProxies: BlockList | undefined },
): BalancerFactory {
  if (cfg === undefined || cfg === 'round-robin') return (t) => new RoundRobin(t);
  if (cfg === 'weighted') return (t) => new SmoothWeighted(t);
  if (cfg === 'least-request') return (t) => new LeastRequest(t);
  const h = cfg.hash;
  const key: KeyExtractor =
    'header' in h
      ? headerKey(h.header)
      : 'cookie' in h
        ? cookieKey(h.cookie)
        : clientIpKey(deps.trustedProxies);
  return (t) => new ConsistentHash(t, key);
}
