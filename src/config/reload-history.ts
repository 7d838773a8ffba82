/**
 * The last reload attempts of this process (file watch, SIGHUP, the admin API), newest first, for
 * the console's config view (GET /admin/v1/config/reloads). In memory and bounded: a restart
 * forgets it, and only the last `capacity` attempts are kept (the log lines `config_applied` /
 * `config_rejected` are the durable record).
 */
import type { ConfigError } from './load.js';

export const RELOAD_HISTORY_SIZE = 50;

export interface ReloadAttempt {
  at: string;
  /** What asked for it: `file`, `SIGHUP`, `admin`, … */
  trigger: string;
  result: 'applied' | 'unchanged' | 'rejected';
  /** The version running after the attempt (the previous one stays on a refusal). */
  version: string;
  /** The version before, when one was applied. */
  previous?: string;
  /** Why a refused reload was refused: every error with its file, line, column and path. */
  errors?: ConfigError[];
  durationMs: number;
}

export class ReloadHistory {
  private readonly attempts: ReloadAttempt[] = [];

  constructor(readonly capacity = RELOAD_HISTORY_SIZE) {}

  record(attempt: ReloadAttempt): void {
    this.attempts.unshift(attempt);
    if (this.attempts.length > this.capacity) this.attempts.length = this.capacity;
  }

  /** Newest first. */
  list(): readonly ReloadAttempt[] {
    return this.attempts;
  }
}
