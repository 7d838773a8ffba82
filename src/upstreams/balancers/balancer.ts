import type { IncomingMessage } from 'node:http';
import type { Target } from '../target.js';

/**
 * Picks a target for one request. Balancers that need request data (consistent hashing) read it
 * from `req` through a key extractor compiled with the config; the others ignore the argument, so
 * they cost nothing extra per request.
 */
export interface Balancer {
  pick(req: IncomingMessage): Target | undefined;
}

/**
 * Builds a balancer over a target list. Compiled once per upstream; called again only when the
 * list changes (DNS answers), never per request.
 */
export type BalancerFactory = (targets: readonly Target[]) => Balancer;

/** The request's hash key (a header, a cookie, the client address), or undefined when it has none. */
export type KeyExtractor = (req: IncomingMessage) => string | undefined;
