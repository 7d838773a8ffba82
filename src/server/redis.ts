/** The gateway's Redis connection from the top-level `redis` settings (defaults here). */
import type { Logger } from 'pino';
import { ms } from '../config/units.js';
import { RedisConnection } from '../redis/connection.js';
import type { RedisConfig } from '../redis/schema.js';
import type { Metrics } from '../telemetry/metrics.js';

export function openRedis(c: RedisConfig, metrics: Metrics, logger: Logger): RedisConnection {
  return new RedisConnection(
    {
      url: c.url,
      cluster: c.cluster,
      sentinel: c.sentinel,
      keyPrefix: c.keyPrefix ?? 'sluice:',
      commandTimeout: ms(c.timeout, 50),
      failures: c.breaker?.failures ?? 3,
      openFor: ms(c.breaker?.openFor, 2000),
    },
    metrics.registry,
    logger,
  );
}
