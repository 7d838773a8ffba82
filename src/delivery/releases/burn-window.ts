/**
 * The window the burn-rate gate reads (analysis/burn.ts). The fleet publishes cumulative counts per
 * step (release_samples); the driving replica keeps what it read at each judgement of the current
 * step, so the counts over the last `window` are the newest totals minus those read at least
 * `window` ago. Until the driver has judged for a whole window (a new step, a driver that just took
 * over) the counts are the step's so far. Memory: one small entry per judgement within the window,
 * for the current step of each release.
 */
import type { WindowCounts } from '../analysis/burn.js';

interface Entry {
  at: number;
  requests: number;
  bad: number[];
}

export class BurnWindows {
  private readonly byRelease = new Map<string, { key: string; entries: Entry[] }>();

  /**
   * Records the step's cumulative candidate counts read at `at` (store clock) and answers the
   * counts over the window ending there. `key` names the run and step: a new one starts afresh.
   */
  observe(
    release: string,
    key: string,
    at: number,
    stepStartedAt: number,
    now: Omit<Entry, 'at'>,
    windowMs: number,
  ): WindowCounts {
    let h = this.byRelease.get(release);
    if (h === undefined || h.key !== key) {
      h = { key, entries: [] };
      this.byRelease.set(release, h);
    }
    const from = at - windowMs;
    // The newest entry read at least a window ago is the base; older ones are no longer needed.
    let base: Entry | undefined;
    while (h.entries.length > 0 && h.entries[0]!.at <= from) base = h.entries.shift();
    if (base !== undefined) h.entries.unshift(base);
    h.entries.push({ at, ...now });
    if (base === undefined)
      return { requests: now.requests, bad: [...now.bad], spanMs: Math.max(0, at - stepStartedAt) };
    return {
      requests: now.requests - base.requests,
      bad: now.bad.map((b, i) => b - (base.bad[i] ?? 0)),
      spanMs: at - base.at,
    };
  }

  /** Forget releases no longer running. */
  retain(running: ReadonlySet<string>): void {
    for (const name of this.byRelease.keys()) if (!running.has(name)) this.byRelease.delete(name);
  }
}
