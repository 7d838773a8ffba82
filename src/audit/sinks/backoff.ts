/**
 * Retry timing of the sinks and the checkpoint publisher: exponential back-off with a cap and
 * "equal jitter" (half the delay fixed, half random), so that replicas or sinks failing together do
 * not retry in lockstep, while a delay is never below half its nominal value.
 */

export interface Backoff {
  /** The wait after the first failure. */
  initialMs: number;
  /** The longest wait. */
  maxMs: number;
}

/** The wait after failure number `failure` (1-based): min(max, initial·2^(failure-1)), jittered to [½, 1] of it. */
export function backoffDelay(failure: number, b: Backoff, random: () => number = Math.random): number {
  const exp = Math.min(30, Math.max(0, failure - 1));
  const nominal = Math.min(b.maxMs, b.initialMs * 2 ** exp);
  return Math.round(nominal / 2 + (random() * nominal) / 2);
}

/**
 * A wait the receiver asked for (Retry-After, seconds or an HTTP date), capped by `maxMs`;
 * undefined when absent or unreadable.
 */
export function retryAfterMs(
  header: string | string[] | undefined,
  maxMs: number,
  now = Date.now(),
): number | undefined {
  const v = Array.isArray(header) ? header[0] : header;
  if (v === undefined || v.trim() === '') return undefined;
  const secs = /^\s*(\d+)\s*$/.exec(v);
  const ms = secs ? Number(secs[1]) * 1000 : Date.parse(v) - now;
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(maxMs, Math.max(0, ms));
}

/** Resolves after `ms`, or at once (false) when `signal` aborts: a stopping shipper does not wait out its back-off. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(v);
    };
    const onAbort = () => done(false);
    // The back-off itself: the wait between two tries of a failed delivery.
    const timer = setTimeout(() => done(true), ms);
    timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
