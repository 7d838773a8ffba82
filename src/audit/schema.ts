/**
 * `audit`: the tamper-evident audit log (docs/audit-log.md). Off by default. When on, the chosen
 * events of the gateway's bus go through a per-process durable outbox (outbox.ts) to the store, one
 * replica (the lease holder) integrates them into the Merkle tree and signs checkpoints, and the
 * admin API exports verifiable bundles. Needs the store (`store`).
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../config/shared-schema.js';
import { AuditPublishSettings, AuditSinksSettings } from './sinks/schema.js';

export const AUDIT_EVENT_TYPES = [
  'auth_failed',
  'admin_change',
  'quota_exceeded',
  'budget_exceeded',
  'limit_breached',
  'release_decision',
  'residency_refused',
  'placement_refused',
  'anomaly_started',
  'anomaly_ended',
  'anomaly_action',
] as const;

/** A retention duration: like other durations, plus days, weeks and years (365 days). */
const RetentionDuration = T.String({
  pattern: '^[0-9]+(ms|s|m|h|d|w|y)$',
  description: 'A duration: `90d`, `7y` (a year is 365 days), `12h`, `500ms`.',
});

/** `audit.retention` (retention.ts, docs/audit-log.md "Retention and archive"). */
export const AuditRetentionSettings = T.Object(
  {
    hot: {
      ...RetentionDuration,
      description:
        'How long entries stay in the store; older ones are archived into `archive.dir` as verifiable bundles and pruned by a minimum index, e.g. `90d`.',
    },
    default: T.Optional({
      ...RetentionDuration,
      description:
        'How long an archived entry stays readable; after that its archive keeps only its leaf hash (redacted), so proofs still verify. Default `7y`.',
    }),
    types: T.Optional(
      T.Record(T.String({ minLength: 1 }), RetentionDuration, {
        description: 'Retention per event type, over `default`, e.g. `{ auth_failed: 1y }`.',
      }),
    ),
    tenants: T.Optional(
      T.Record(T.String({ minLength: 1 }), RetentionDuration, {
        description: 'Retention per tenant (the entry’s `tenant`), over the type’s and `default`.',
      }),
    ),
    archive: T.Object(
      {
        dir: T.String({
          minLength: 1,
          description:
            'Directory of the archive bundles (one JSON file per segment, written atomically and fsynced).',
        }),
      },
      { additionalProperties: false },
    ),
    every: T.Optional({
      ...RetentionDuration,
      description: 'How often the lease holder runs the job; default `1h`.',
    }),
    segment: T.Optional(
      T.Integer({ minimum: 1, description: 'At most this many entries per archive file; default 100000.' }),
    ),
  },
  { additionalProperties: false },
);

export const AuditSettings = T.Object(
  {
    enabled: T.Optional(T.Boolean({ description: 'Record the audit log (default false).' })),
    origin: T.Optional(
      T.String({
        pattern: '^[^\\s+]+$',
        maxLength: 200,
        description:
          'The log’s name: the first line of every checkpoint and the name of its signing key, e.g. `gateway.example.com/audit`; default `sluice/audit`.',
      }),
    ),
    events: T.Optional(
      T.Array(T.Union(AUDIT_EVENT_TYPES.map((t) => T.Literal(t))), {
        uniqueItems: true,
        description:
          'Event types recorded; default all of them. Admin changes are written into the store outbox by the transaction that makes the change, so none is ever lost.',
      }),
    ),
    signingKey: T.Optional(
      T.String({
        minLength: 1,
        description:
          'PEM file of the Ed25519 private key that signs checkpoints; else the environment variable SLUICE_AUDIT_KEY (PEM text or a file path). With neither, the embedded store generates one into its data directory (with a warning); PostgreSQL refuses to start (every replica must sign with the same key).',
      }),
    ),
    subjectKey: T.Optional(
      T.String({
        minLength: 1,
        description:
          'File holding the key-encryption key (32 bytes: 64 hex digits or base64) that wraps the per-subject keys of personal fields; else SLUICE_AUDIT_SUBJECT_KEK (the same text or a file path). Without either the keys are stored unwrapped in the store, with a warning (docs/audit-log.md, “Erasure”).',
      }),
    ),
    publicKeys: T.Optional(
      T.Array(T.String({ minLength: 1 }), {
        description:
          'Verifier keys (vkeys) of keys that signed earlier checkpoints (after a rotation), exported with the bundles.',
      }),
    ),
    checkpoint: T.Optional(
      T.Object(
        {
          entries: T.Optional(
            T.Integer({
              minimum: 0,
              description: 'A checkpoint every this many entries; default 1000 (0: by time only).',
            }),
          ),
          every: T.Optional({
            ...Duration,
            description: 'A checkpoint at least this often while the log grows; default 1m.',
          }),
        },
        { additionalProperties: false },
      ),
    ),
    retention: T.Optional(AuditRetentionSettings),
    outbox: T.Optional(
      T.Object(
        {
          dir: T.Optional(
            T.String({
              minLength: 1,
              description:
                'Directory of the per-process outbox files (fsynced JSON lines); default `audit-outbox` in the store’s data directory (./data/sluice/audit-outbox). One per replica or host.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    sinks: T.Optional(AuditSinksSettings),
    publish: T.Optional(AuditPublishSettings),
  },
  {
    additionalProperties: false,
    description: 'The tamper-evident audit log (docs/audit-log.md). Off by default.',
  },
);

export type AuditConfig = Static<typeof AuditSettings>;
