/**
 * The usage counters in Redis, shared by every replica. A decision is one Lua script: read every
 * counter the request counts against, refuse if any would pass its limit, otherwise increment them
 * all. Atomic, so concurrent requests on any number of replicas can never overrun a limit, and a
 * refused request consumes nothing. A counter Redis does not have (a new period, or Redis lost its
 * data) is created from its seed: the total persisted in the store.
 */
import type { RedisConnection } from '../redis/connection.js';
import { LuaScript } from '../redis/lua-script.js';
import { type CounterItem, GRACE_SECONDS } from './counters.js';
import type { Period } from './periods.js';

/** Read every counter; refuse with the first over its limit; else create missing ones from their seed and add. */
const TAKE = new LuaScript(`
local n = #KEYS
local cur = {}
for i = 1, n do
  local b = (i - 1) * 5
  local v = redis.call('GET', KEYS[i])
  local used
  if v then used = tonumber(v); cur[i] = used else used = tonumber(ARGV[b + 4]); cur[i] = false end
  local limit = tonumber(ARGV[b + 1])
  if limit >= 0 and used + tonumber(ARGV[b + 2]) > limit then return {0, i, used} end
end
local out = {1}
for i = 1, n do
  local b = (i - 1) * 5
  if cur[i] == false then redis.call('SET', KEYS[i], ARGV[b + 4], 'EX', ARGV[b + 5]) end
  if ARGV[b + 3] ~= '0' then out[i + 1] = redis.call('INCRBY', KEYS[i], ARGV[b + 3])
  else out[i + 1] = cur[i] or tonumber(ARGV[b + 4]) end
end
return out`);

/** Raise each counter to at least its floor (the persisted total); create it if missing. */
const RAISE = new LuaScript(`
for i = 1, #KEYS do
  local f = ARGV[i * 2 - 1]
  local v = redis.call('GET', KEYS[i])
  if not v then redis.call('SET', KEYS[i], f, 'EX', ARGV[i * 2])
  elseif tonumber(v) < tonumber(f) then redis.call('SET', KEYS[i], f, 'KEEPTTL') end
end
return 1`);

/** Seconds a counter of `period` lives in Redis from `now`. */
export function ttlOf(period: Period, now: number): number {
  return Math.ceil((period.endsAt - now) / 1000) + GRACE_SECONDS;
}

/**
 * A usage counter's key. {tenant}: every counter of one tenant hashes to one Cluster slot, so one
 * script may touch them all (src/redis/key-slots.ts checks it at load).
 */
export function usageKey(prefix: string, tenant: string, metric: string, periodId: string): string {
  return `${prefix}usage:{${tenant}}:${metric}:${periodId}`;
}

export class RedisCounters {
  constructor(readonly conn: RedisConnection) {}

  /** False while the connection's breaker is open: decide without Redis at once. */
  get available(): boolean {
    return this.conn.available;
  }

  key(tenant: string, it: { metric: string; period: Period }): string {
    return usageKey(this.conn.keyPrefix, tenant, it.metric, it.period.id);
  }

  /**
   * The check-and-increment script: `[1, ...values]` when every item fit (and was added), else
   * `[0, index + 1, used]`. `seeds[i]` is the starting value of item i if Redis lacks it.
   */
  take(
    tenant: string,
    items: readonly CounterItem[],
    seeds: readonly number[],
    now: number,
  ): Promise<number[]> {
    const keys: string[] = new Array(items.length);
    const args: (string | number)[] = [];
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      keys[i] = this.key(tenant, it);
      args.push(it.limit, it.need, it.inc, seeds[i]!, ttlOf(it.period, now));
    }
    return this.conn.run((c) => TAKE.run(c, keys, args) as Promise<number[]>);
  }

  /** The counters' values (null where Redis has none). */
  read(tenant: string, refs: readonly { metric: string; period: Period }[]): Promise<(string | null)[]> {
    return this.conn.run((c) => c.mget(...refs.map((x) => this.key(tenant, x))));
  }

  /** True for the first replica to ask for this name and period (SET NX). */
  async once(tenant: string, name: string, period: Period, now: number): Promise<boolean> {
    const k = `${this.conn.keyPrefix}usage:{${tenant}}:once:${name}:${period.id}`;
    return (await this.conn.run((c) => c.set(k, '1', 'EX', ttlOf(period, now), 'NX'))) === 'OK';
  }

  /** Raise each of one tenant's counters to at least its floor (`args`: floor, ttl per key). Never rejects. */
  raise(keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return this.conn.run((c) => RAISE.run(c, keys, args)).catch(() => {});
  }
}
