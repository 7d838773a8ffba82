/** Metrics of audit shipping and checkpoint publishing: labels are sink names and target kinds, never URLs. */
import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../../telemetry/per-registry.js';

export interface ShippingMetrics {
  shipped: Counter<'sink'>;
  failures: Counter<'sink'>;
  deadLetters: Counter<'sink'>;
  lag: Gauge<'sink'>;
  publishFailures: Counter<'target'>;
  published: Counter<'target'>;
}

export const shippingMetrics = perRegistry(
  (r: Registry): ShippingMetrics => ({
    shipped: new Counter({
      name: 'sluice_audit_sink_entries_total',
      help: 'Audit entries delivered to each sink (a replayed dead letter counts when delivered).',
      labelNames: ['sink'],
      registers: [r],
    }),
    failures: new Counter({
      name: 'sluice_audit_sink_failures_total',
      help: 'Failed deliveries of a batch to each sink (every try that failed, replays included).',
      labelNames: ['sink'],
      registers: [r],
    }),
    deadLetters: new Counter({
      name: 'sluice_audit_sink_dead_letters_total',
      help: 'Batches that every try failed for, kept as dead letters, per sink.',
      labelNames: ['sink'],
      registers: [r],
    }),
    lag: new Gauge({
      name: 'sluice_audit_sink_lag_entries',
      help: 'Entries integrated into the audit log and not yet shipped to each sink (on the shipping replica).',
      labelNames: ['sink'],
      registers: [r],
    }),
    publishFailures: new Counter({
      name: 'sluice_audit_checkpoint_publish_failures_total',
      help: 'Failed publications of a signed checkpoint, by target (file, history, url).',
      labelNames: ['target'],
      registers: [r],
    }),
    published: new Counter({
      name: 'sluice_audit_checkpoints_published_total',
      help: 'Signed checkpoints published, by target (file, history, url).',
      labelNames: ['target'],
      registers: [r],
    }),
  }),
);
