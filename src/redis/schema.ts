import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../config/shared-schema.js';

const RedisUrl = T.String({ pattern: '^rediss?://' });

export const RedisSettings = T.Object(
  {
    url: T.Optional(
      T.String({
        pattern: '^rediss?://',
        description:
          'One Redis server, `redis://[user:password@]host:port[/db]` (use `${REDIS_URL}`); `rediss://` for TLS. Exactly one of `url`, `cluster`, `sentinel`.',
      }),
    ),
    cluster: T.Optional(
      T.Object(
        {
          nodes: T.Array(RedisUrl, {
            minItems: 1,
            description:
              "Some nodes of the Redis Cluster (`redis://[user:password@]host:port`, no database: a cluster has only 0); the client learns the others and the slot map from them. Every node is reached with the first URL's credentials and scheme.",
          }),
        },
        {
          additionalProperties: false,
          description:
            'A Redis Cluster (docs/redis.md). Every script Sluice runs touches the keys of one hash slot; a route whose limits could not share one is refused at load.',
        },
      ),
    ),
    sentinel: T.Optional(
      T.Object(
        {
          name: T.String({
            minLength: 1,
            description: "The monitored primary's name (`sentinel monitor <name> ...`).",
          }),
          sentinels: T.Array(RedisUrl, {
            minItems: 1,
            description:
              "Sentinels, `redis://[user:password@]host:port` (credentials: the sentinels' own, if they ask for them).",
          }),
          username: T.Optional(T.String({ description: 'User on the primary and replicas (ACL).' })),
          password: T.Optional(
            T.String({ description: 'Password on the primary and replicas (use `${REDIS_PASSWORD}`).' }),
          ),
          db: T.Optional(T.Integer({ minimum: 0, description: 'Database number; default 0.' })),
        },
        {
          additionalProperties: false,
          description:
            'A primary found through Redis Sentinel (docs/redis.md): after a failover the client asks the sentinels for the new primary and reconnects to it.',
        },
      ),
    ),
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
