/**
 * Release metrics, per replica: what this replica applies (weight, step, state), whether it drives,
 * and the decisions it took. Label values are release names from the config (bounded); the
 * per-version figures of the analysis are in the admin API and `sluice release status`.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

const STATES = ['pending', 'running', 'paused', 'promoted', 'aborted'] as const;

export class ReleaseMetrics {
  readonly weight: Gauge<'release'>;
  readonly step: Gauge<'release'>;
  readonly state: Gauge<'release' | 'state'>;
  readonly driver: Gauge;
  readonly decisions: Counter<'release' | 'action'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.weight = new Gauge({
      name: 'sluice_release_weight_percent',
      help: 'Share of sticky keys this replica sends to the candidate version, by release.',
      labelNames: ['release'],
      registers,
    });
    this.step = new Gauge({
      name: 'sluice_release_step',
      help: 'The step (from 0) this replica applies, by release.',
      labelNames: ['release'],
      registers,
    });
    this.state = new Gauge({
      name: 'sluice_release_state',
      help: 'The release state this replica applies (1 for the current state).',
      labelNames: ['release', 'state'],
      registers,
    });
    this.driver = new Gauge({
      name: 'sluice_release_driver',
      help: '1 when this replica holds the driver lease (judges and moves releases).',
      registers,
    });
    this.decisions = new Counter({
      name: 'sluice_release_decisions_total',
      help: 'Release decisions this replica took as the driver, by release and action (advance, promote, rollback, pause, hold).',
      labelNames: ['release', 'action'],
      registers,
    });
  }

  applied(release: string, state: string, step: number, weightPercent: number): void {
    this.weight.labels(release).set(weightPercent);
    this.step.labels(release).set(step);
    for (const s of STATES) this.state.labels(release, s).set(s === state ? 1 : 0);
  }
}
