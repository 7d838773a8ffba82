/**
 * When each API key was last used, for operators (`lastUsedAt` in the admin API). The data plane
 * only notes the time in a Map (one set per request, no store access); the notes are written in
 * one batched UPDATE every `everyMs` and on close. A store outage loses nothing but the freshness
 * of these timestamps: the batch is kept and retried with the next one.
 */
import type { IdentityDirectory, KeyCheck } from '../policies/identity.js';
import type { TenancyRepository } from './repository.js';

export class KeyUseRecorder {
  private pending = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly repo: TenancyRepository,
    everyMs: number,
    private readonly onError: (err: Error) => void,
  ) {
    this.timer = setInterval(() => void this.flush(), everyMs);
    this.timer.unref();
  }

  /** The directory, noting every key that verifies. */
  wrap(dir: IdentityDirectory): IdentityDirectory {
    return {
      tenant: (id) => dir.tenant(id),
      verifyKey: (presented, nowMs): KeyCheck => {
        const r = dir.verifyKey(presented, nowMs);
        if (r.ok) this.pending.set(r.keyId, nowMs);
        return r;
      },
    };
  }

  flush(): Promise<void> {
    if (this.flushing !== undefined || this.pending.size === 0) return this.flushing ?? Promise.resolve();
    const batch = this.pending;
    this.pending = new Map();
    const uses = new Map<string, Date>();
    for (const [id, at] of batch) uses.set(id, new Date(at));
    this.flushing = this.repo
      .recordKeyUse(uses)
      .catch((err: Error) => {
        // Keep the batch for the next try; newer notes win.
        for (const [id, at] of batch) if (!this.pending.has(id)) this.pending.set(id, at);
        this.onError(err);
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
