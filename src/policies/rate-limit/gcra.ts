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
 * The same arithmetic runs in `decideLocal` (a Map) and in `GCRA_LUA` (Redis, atomically, on the
 * server's clock): only the clock and the store differ.
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
 * Keys: the limits' keys. ARGV: interval, tolerance of each limit, in order. Returns
 * `{allowed, retryAfterUs, remaining1, resetUs1, remaining2, resetUs2, ...}`. Redis's TIME is the
 * clock: every replica decides on one clock, however theirs drift (scripts may call TIME since
 * Redis 5 with effect replication, the default from Redis 7).
 */
export const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local tats = {}
local out = {1, 0}
local ok = true
local retry = 0
for i = 1, n do
  local interval = tonumber(ARGV[2 * i - 1])
  local tol = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat < now then tat = now end
  local nt = tat + interval
  local wait = nt - tol - now
  if wait > 0 then
    ok = false
    if wait > retry then retry = wait end
    out[1 + 2 * i] = 0
    out[2 + 2 * i] = math.ceil(wait)
    tats[i] = false
  else
    tats[i] = nt
    out[1 + 2 * i] = math.floor((tol - (nt - now)) / interval + ${EPS})
    out[2 + 2 * i] = math.ceil(nt - now)
  end
end
if ok then
  for i = 1, n do
    redis.call('SET', KEYS[i], string.format('%.0f', tats[i]), 'PX', math.ceil((tats[i] - now) / 1000) + 1)
  end
  return out
end
out[1] = 0
out[2] = math.ceil(retry)
for i = 1, n do
  if tats[i] then
    local interval = tonumber(ARGV[2 * i - 1])
    local tol = tonumber(ARGV[2 * i])
    local tat = tats[i] - interval
    out[1 + 2 * i] = math.floor((tol - (tat - now)) / interval + ${EPS})
    out[2 + 2 * i] = math.ceil(tat - now)
  end
end
return out
`;

/** Reads the script's reply into a decision. */
export function fromScriptReply(reply: readonly number[], n: number): GcraDecision {
  const remaining = new Array<number>(n);
  const reset = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    remaining[i] = reply[2 + 2 * i]!;
    reset[i] = reply[3 + 2 * i]!;
  }
  return { allowed: reply[0] === 1, retryAfter: reply[1]!, remaining, reset };
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
