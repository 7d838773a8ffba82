import type { UpstreamConfig } from '../config/schema.js';
import { ms } from '../config/units.js';
import type { Balancer } from './balancers/balancer.js';
import { RoundRobin } from './balancers/round-robin.js';
import type { PoolRegistry } from './pools.js';
import type { Target } from './target.js';

export interface UpstreamTimeouts {
  connect: number;
  firstByte: number;
  idle: number;
  total: number;
}

export const defaultTimeouts: UpstreamTimeouts = {
  connect: 5_000,
  firstByte: 60_000,
  idle: 60_000,
  total: 0,
};

/**
 * A named group of targets and the policy that picks one. The proxy asks the group, never a
 * target directly, so health, breakers and failover (issue 4) slot in behind `pick`.
 */
export class UpstreamGroup {
  readonly targets: readonly Target[];
  readonly timeouts: UpstreamTimeouts;
  private readonly balancer: Balancer;

  constructor(
    readonly name: string,
    cfg: UpstreamConfig,
    pools: PoolRegistry,
  ) {
    this.timeouts = {
      connect: ms(cfg.timeouts?.connect, defaultTimeouts.connect),
      firstByte: ms(cfg.timeouts?.firstByte, defaultTimeouts.firstByte),
      idle: ms(cfg.timeouts?.idle, defaultTimeouts.idle),
      total: ms(cfg.timeouts?.total, defaultTimeouts.total),
    };
    this.targets = cfg.targets.map((t, i) => {
      const u = new URL(t.url);
      return {
        id: `${name}#${i}`,
        origin: u.origin,
        hostHeader: u.host,
        weight: t.weight ?? 1,
        dispatcher: pools.acquire(u.origin, {
          connections: cfg.pool?.connections ?? 128,
          pipelining: cfg.pool?.pipelining ?? 1,
          keepAliveTimeout: ms(cfg.pool?.keepAliveTimeout, 4_000),
          connectTimeout: this.timeouts.connect,
        }),
      };
    });
    this.balancer = new RoundRobin(this.targets);
  }

  pick(key?: string): Target | undefined {
    return this.balancer.pick(key);
  }
}
