/**
 * GCRA (the generic cell rate algorithm), in memory and as one Redis script, with one meaning.
 *
 * A limit is an emission interval `T = window / limit` and a tolerance `tau = burst × T`. Its whole
 * state is one number per key, the theoretical arrival time (TAT) of the next request, in
 * microseconds. A request at `now` is allowed when `max(TAT, now) + T - tau <= now`; allowed, the
 * TAT becomes `max(TAT, now) + T`. A key unused for `tau` is back to a full bucket and can be
 * forgotten (it expires then). Several limits of one request are decided together: all are checked,
 * and only if every one allows the request are the new TATs written, so a refused request consumes
 * nothing.
 *
 * The same arithmetic runs in `LocalGcraStore.decide` (a Map) and in `GCRA_LUA` (Redis, atomically,
 * on the server's clock, several requests per call): only the clock and the store differ.
 */

/** One limit of a request: its key and parameters (microseconds). */
export interface GcraLimit {
  /** Emission interval, µs. */
  readonly interval: number;
  /** Burst tolerance, µs (`burst × interval`). */
  readonly tolerance: number;
}

/**
 * The decision for a request: `allowed`, and per limit (same order) the requests remaining and
 * the µs until that limit is full again (allowed limits) or until it allows one more (refusing ones);
 * `retryAfter` (µs) is the longest wait of the refusing limits (0 when allowed).
 */
export interface GcraDecision {
  allowed: boolean;
  retryAfter: number;
  remaining: number[];
  reset: number[];
}

/** Guard against 98.9999999 for 99 when `interval` is not a whole number of µs. */
const EPS = 1e-6;

/**
 * The decisions of several requests in one call (the requests of one tick, rate-limit/batch.ts), in
 * order, as if each were its own call: one round trip and one command to encode per tick instead of
 * one per request. KEYS: every request's keys, request after request. ARGV: the number of requests,
 * then per request its number of limits n and the interval and tolerance of each (µs). Returns, per
 * request, `allowed, retryAfterUs, remaining1, resetUs1, ..., remainingN, resetUsN`, concatenated.
 *
 * Each request is decided on its own (all of its limits or none are committed; a refusal writes
 * nothing), seeing what the requests before it in the call committed: the TATs read or written are
 * kept in a table, so a key shared by the call's requests is read once and written once, at the end.
 * Redis's TIME is the clock, read once per call: every replica decides on one clock, however theirs
 * drift (scripts may call TIME since Redis 5 with effect replication, the default from Redis 7).
 * Keys of one request share a hash tag (src/redis/key-slots.ts refuses a route at load whose
 * limits would not), those of different requests need not: on one server a call spans slots; with
 * Redis Cluster, batch.ts sends one call per slot.
 */
export const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local seen = {}
local written = {}
local nwritten = 0
local out = {}
local nt = {}
local k = 0
local a = 2
local o = 0
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a])
  local ok = true
  local retry = 0
  for i = 1, n do
    local key = KEYS[k + i]
    local interval = tonumber(ARGV[a + 2 * i - 1])
    local tol = tonumber(ARGV[a + 2 * i])
    local tat = tats[key]
    if tat == nil then
      tat = tonumber(redis.call('GET', key) or '0') or 0
      tats[key] = tat
    end
    if tat < now then tat = now end
    local next = tat + interval
    local wait = next - tol - now
    if wait > 0 then
      ok = false
      if wait > retry then retry = wait end
      out[o + 1 + 2 * i] = 0
      out[o + 2 + 2 * i] = math.ceil(wait)
      nt[i] = false
    else
      nt[i] = next
      out[o + 1 + 2 * i] = math.floor((tol - (next - now)) / interval + ${EPS})
      out[o + 2 + 2 * i] = math.ceil(next - now)
    end
  end
  if ok then
    out[o + 1] = 1
    out[o + 2] = 0
    for i = 1, n do
      local key = KEYS[k + i]
      if not seen[key] then
        seen[key] = true
        nwritten = nwritten + 1
        written[nwritten] = key
      end
      tats[key] = nt[i]
    end
  else
    out[o + 1] = 0
    out[o + 2] = math.ceil(retry)
    for i = 1, n do
      if nt[i] then
        local interval = tonumber(ARGV[a + 2 * i - 1])
        local tol = tonumber(ARGV[a + 2 * i])
        local tat = nt[i] - interval
        out[o + 1 + 2 * i] = math.floor((tol - (tat - now)) / interval + ${EPS})
        out[o + 2 + 2 * i] = math.ceil(tat - now)
      end
    end
  end
  k = k + n
  a = a + 1 + 2 * n
  o = o + 2 + 2 * n
end
for i = 1, nwritten do
  local key = written[i]
  local tat = tats[key]
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1)
end
return out
`;

/** Reads one request's decision (`n` limits) from the script's reply, starting at `at`. */
export function fromScriptReply(reply: readonly number[], at: number, n: number): GcraDecision {
  const remaining = new Array<number>(n);
  const reset = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    remaining[i] = reply[at + 2 + 2 * i]!;
    reset[i] = reply[at + 3 + 2 * i]!;
  }
  return { allowed: reply[at] === 1, retryAfter: reply[at + 1]!, remaining, reset };
}

/** Microseconds since the epoch, below the millisecond (limits above 1000/s need it). */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/**
 * The in-process store: key → TAT (µs). Bounded: past `maxKeys`, expired keys are swept and, if
 * still full, the oldest written are dropped (a dropped key starts again with a full bucket).
 * Expired keys are also swept by `sweep()` (a timer of the owner).
 */
export class LocalGcraStore {
  private readonly tats = new Map<string, number>();

  constructor(private readonly maxKeys: number) {}

  get size(): number {
    return this.tats.size;
  }

  /** Decides a request's limits at `now` (µs) and commits them when all allow: one atomic step (one thread). */
  decide(keys: readonly string[], limits: readonly GcraLimit[], now: number): GcraDecision {
    const n = keys.length;
    const next = new Array<number>(n);
    const remaining = new Array<number>(n);
    const reset = new Array<number>(n);
    let retry = 0;
    for (let i = 0; i < n; i++) {
      const l = limits[i]!;
      let tat = this.tats.get(keys[i]!) ?? now;
      if (tat < now) tat = now;
      const nt = tat + l.interval;
      const wait = nt - l.tolerance - now;
      if (wait > 0) {
        if (wait > retry) retry = wait;
        next[i] = -1;
        remaining[i] = 0;
        reset[i] = Math.ceil(wait);
      } else {
        next[i] = nt;
        remaining[i] = Math.floor((l.tolerance - (nt - now)) / l.interval + EPS);
        reset[i] = Math.ceil(nt - now);
      }
    }
    if (retry === 0) {
      for (let i = 0; i < n; i++) this.write(keys[i]!, next[i]!, now);
      return { allowed: true, retryAfter: 0, remaining, reset };
    }
    // Refused: nothing is written; the limits that would have allowed report their state as is.
    for (let i = 0; i < n; i++) {
      const nt = next[i]!;
      if (nt < 0) continue;
      const l = limits[i]!;
      const tat = nt - l.interval;
      remaining[i] = Math.floor((l.tolerance - (tat - now)) / l.interval + EPS);
      reset[i] = Math.ceil(tat - now);
    }
    return { allowed: false, retryAfter: Math.ceil(retry), remaining, reset };
  }

  private write(key: string, tat: number, now: number): void {
    const m = this.tats;
    if (m.size >= this.maxKeys && !m.has(key)) {
      this.sweep(now);
      if (m.size >= this.maxKeys) {
        // Still full of live keys: drop the oldest tenth at once rather than one per request.
        let drop = Math.max(1, this.maxKeys >> 3);
        for (const k of m.keys()) {
          m.delete(k);
          if (--drop === 0) break;
        }
      }
    }
    m.set(key, tat);
  }

  /** Forgets keys whose TAT has passed: their bucket is full, the same as no entry. */
  sweep(now: number): number {
    let n = 0;
    for (const [k, tat] of this.tats) {
      if (tat <= now) {
        this.tats.delete(k);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.tats.clear();
  }
}
