import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../config/shared-schema.js';

export const RedisSettings = T.Object(
  {
    url: T.String({
      pattern: '^rediss?://',
      description:
        'The Redis server, `redis://[user:password@]host:port[/db]` (use `${REDIS_URL}`); `rediss://` for TLS.',
    }),
    keyPrefix: T.Optional(
      T.String({
        maxLength: 64,
        pattern: '^[A-Za-z0-9:_.-]*$',
        description: 'Prefix of every key Sluice writes; default `sluice:`. Give each environment its own.',
      }),
    ),
    timeout: T.Optional({
      ...Duration,
      description: 'Longest wait for one Redis round trip; default 50ms. A late answer counts as a failure.',
    }),
    breaker: T.Optional(
      T.Object(
        {
          failures: T.Optional(
            T.Integer({ minimum: 1, description: 'Consecutive failures that open the breaker; default 3.' }),
          ),
          openFor: T.Optional({
            ...Duration,
            description:
              'How long commands are refused without a round trip, then one trial; default 2s. A reconnection to Redis closes the breaker sooner.',
          }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Redis shared by every replica for rate limits, quotas, budgets and the cache. Without it, each process keeps them in memory. While Redis fails, a breaker refuses commands at once and each policy applies its `onRedisError` choice.',
  },
);

export type RedisConfig = Static<typeof RedisSettings>;
