/**
 * What the admin API and `sluice release` see of releases: each release as the store holds it,
 * with its plan (the steps its config describes), the latest judgement and live figures of the
 * current step, and the actions people take. The gateway builds one (server/releases.ts); the
 * admin API reads it through AdminHost.releases.
 */
import type { Actor } from '../../tenancy/repository.js';
import type { Judgement } from '../analysis/types.js';
import { act, type DeclaredRelease, type ReleaseAction } from './actions.js';
import { type PlanStep, planOf } from './plan.js';
import type { ReleaseEvent, ReleaseRow, ReleaseStore, StepSamples } from './store.js';

export interface ReleaseView {
  release: ReleaseRow;
  plan: PlanStep[];
  /** False for a release the config file no longer declares (kept in the store with its history). */
  declared: boolean;
  /** The newest judgement of the current run (the figures of both versions and the checks), if any. */
  lastJudgement: { at: number; step: number; judgement: Judgement } | undefined;
  /** The fleet's measurement of the current step so far. */
  current: StepSamples | undefined;
}

export interface ReleaseAdmin {
  list(): Promise<ReleaseView[]>;
  get(name: string): Promise<ReleaseView | undefined>;
  history(name: string, limit: number): Promise<ReleaseEvent[]>;
  /** Throws ReleaseActionError (not_found → 404, not_allowed and conflict → 409). */
  act(name: string, action: ReleaseAction, who: Actor, reason: string | undefined): Promise<ReleaseView>;
}

export class ReleaseAdminService implements ReleaseAdmin {
  constructor(
    private readonly store: ReleaseStore,
    /** What the running config declares, by release name. */
    private readonly declared: () => ReadonlyMap<string, DeclaredRelease>,
    private readonly buckets: number,
  ) {}

  async list(): Promise<ReleaseView[]> {
    const rows = await this.store.list();
    return Promise.all(rows.map((r) => this.view(r)));
  }

  async get(name: string): Promise<ReleaseView | undefined> {
    const row = await this.store.get(name);
    return row && this.view(row);
  }

  history(name: string, limit: number): Promise<ReleaseEvent[]> {
    return this.store.history(name, limit);
  }

  async act(
    name: string,
    action: ReleaseAction,
    who: Actor,
    reason: string | undefined,
  ): Promise<ReleaseView> {
    const row = await act(this.store, name, action, who, reason, this.declared().get(name));
    return this.view(row);
  }

  private async view(row: ReleaseRow): Promise<ReleaseView> {
    const [events, current] = await Promise.all([
      this.store.history(row.name, 50),
      this.store.readSamples(row.name, row.run, row.step, this.buckets),
    ]);
    const judged = events.find((e) => e.run === row.run && e.verdict !== null && e.figures !== null);
    return {
      release: row,
      plan: planOf(row.spec),
      declared: this.declared().has(row.name),
      lastJudgement: judged && { at: judged.at, step: judged.step, judgement: judged.figures as Judgement },
      current,
    };
  }
}
