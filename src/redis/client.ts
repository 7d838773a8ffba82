/**
 * The ioredis client behind a RedisConnection, for each of the three deployments `redis` names
 * (docs/redis.md): one server (`url`), a Redis Cluster (`cluster.nodes`), or a primary found
 * through Sentinel (`sentinel`). The connection's behaviour is the same for all three: no offline
 * queue (a command while Redis is unreachable fails at once), a command timeout, reconnection
 * forever with a short backoff; what differs is how the client finds the server for a key.
 */
import { Cluster, type RedisOptions as IoRedisOptions, Redis } from 'ioredis';
import { redactUrl } from '../store/store.js';

/** Either client: both are ioredis Commanders with the same commands. */
export type RedisClient = Redis | Cluster;

export interface ClusterTarget {
  /** Some nodes' URLs; the client learns the rest (CLUSTER SLOTS). */
  nodes: readonly string[];
}

export interface SentinelTarget {
  name: string;
  sentinels: readonly string[];
  username?: string | undefined;
  password?: string | undefined;
  db?: number | undefined;
}

export interface ClientTarget {
  url?: string | undefined;
  cluster?: ClusterTarget | undefined;
  sentinel?: SentinelTarget | undefined;
}

export interface ClientTimings {
  commandTimeout: number;
}

// Reconnect forever, backing off to 500 ms: recovery needs no restart, and a Redis that is back
// is found within half a second (until then every replica decides on its own counters). A
// refused connection to a stopped Redis costs next to nothing at that rate.
const backoff = (times: number): number => Math.min(50 * 2 ** Math.min(times, 4), 500);

function common(t: ClientTimings): IoRedisOptions {
  return {
    enableAutoPipelining: true,
    maxRetriesPerRequest: 0,
    commandTimeout: t.commandTimeout,
    connectTimeout: Math.max(1000, t.commandTimeout * 4),
  };
}

interface HostPort {
  host: string;
  port: number;
}

function hostPort(url: string): HostPort {
  const u = new URL(url);
  // `[::1]` in a URL is `::1` to a socket.
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port: u.port === '' ? 6379 : Number(u.port) };
}

function credentials(url: string): { username?: string; password?: string } {
  const u = new URL(url);
  const out: { username?: string; password?: string } = {};
  if (u.username !== '') out.username = decodeURIComponent(u.username);
  if (u.password !== '') out.password = decodeURIComponent(u.password);
  return out;
}

/** Where the client points, for logs: passwords never shown. */
export function describeTarget(t: ClientTarget): string {
  if (t.cluster !== undefined) return `cluster ${t.cluster.nodes.map(redactUrl).join(',')}`;
  if (t.sentinel !== undefined)
    return `sentinel ${t.sentinel.name} via ${t.sentinel.sentinels.map(redactUrl).join(',')}`;
  return redactUrl(t.url ?? '');
}

export function createClient(t: ClientTarget, timings: ClientTimings): RedisClient {
  if (t.cluster !== undefined) {
    const first = t.cluster.nodes[0]!;
    const tls = first.startsWith('rediss:');
    return new Cluster(t.cluster.nodes.map(hostPort), {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      // A node that stopped answering: the slot map is read again from the others. The refresh
      // and the redirections a failover causes (MOVED, CLUSTERDOWN) stay within the command
      // timeout, which bounds each command whatever the cluster does meanwhile.
      clusterRetryStrategy: backoff,
      retryDelayOnFailover: 50,
      retryDelayOnClusterDown: 50,
      retryDelayOnTryAgain: 50,
      slotsRefreshTimeout: Math.max(1000, timings.commandTimeout * 4),
      redisOptions: {
        ...common(timings),
        ...credentials(first),
        ...(tls ? { tls: {} } : {}),
      },
    });
  }
  if (t.sentinel !== undefined) {
    const s = t.sentinel;
    const first = s.sentinels[0]!;
    const sc = credentials(first);
    return new Redis({
      ...common(timings),
      enableOfflineQueue: false,
      sentinels: s.sentinels.map(hostPort),
      name: s.name,
      ...(s.username !== undefined ? { username: s.username } : {}),
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.db !== undefined ? { db: s.db } : {}),
      ...(sc.username !== undefined ? { sentinelUsername: sc.username } : {}),
      ...(sc.password !== undefined ? { sentinelPassword: sc.password } : {}),
      ...(first.startsWith('rediss:') ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {}),
      // Subscribes to the sentinels' +switch-master: a failover is followed at once, not at the
      // next failed command.
      failoverDetector: true,
      sentinelRetryStrategy: backoff,
      retryStrategy: backoff,
    });
  }
  return new Redis(t.url ?? '', {
    ...common(timings),
    enableOfflineQueue: false,
    lazyConnect: false,
    retryStrategy: backoff,
  });
}
