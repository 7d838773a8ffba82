/**
 * `audit.sinks` and `audit.publish`: where the integrated audit log is shipped (an HTTP endpoint
 * taking JSON lines, a JSON-lines file) and where each new signed checkpoint is published (a file,
 * an append-only history, an HTTP URL). docs/audit-log.md, "Sinks and published checkpoints".
 * A leaf module (TypeBox only), imported by ../schema.ts.
 */
import { type Static, Type as T } from '@sinclair/typebox';
import { Duration } from '../../config/shared-schema.js';

export const SINK_NAME = '^[a-z0-9][a-z0-9_-]{0,62}$';

const Retry = T.Object(
  {
    attempts: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: 100,
        description: 'Tries of one batch before it goes to the dead letters; default 8.',
      }),
    ),
    initial: T.Optional({ ...Duration, description: 'Wait after the first failure; default 500ms.' }),
    max: T.Optional({
      ...Duration,
      description: 'Longest wait between tries (the back-off doubles up to it); default 30s.',
    }),
  },
  { additionalProperties: false, description: 'Retries with exponential back-off (and jitter), capped.' },
);

const common = {
  name: T.String({
    pattern: SINK_NAME,
    description:
      'The sink’s name: its cursor in the store and its dead letters are kept under it (rename = start again).',
  }),
  start: T.Optional(
    T.Union([T.Literal('beginning'), T.Literal('end')], {
      description:
        'Where a sink seen for the first time starts: `beginning` (default: the whole log is shipped) or `end` (only entries integrated from now on).',
    }),
  ),
  batch: T.Optional(
    T.Integer({ minimum: 1, maximum: 10_000, description: 'Entries per batch; default 500.' }),
  ),
  retry: T.Optional(Retry),
};

export const HttpSinkSettings = T.Object(
  {
    ...common,
    type: T.Literal('http'),
    url: T.String({
      pattern: '^https?://',
      description: 'Receives POSTs of JSON lines (application/x-ndjson), one entry per line.',
    }),
    token: T.Optional(
      T.String({
        minLength: 1,
        pattern: '^[\\x21-\\x7e]+$',
        description:
          'Sent as `Authorization: Bearer <token>`. Write it as `${VAR}` so the config file holds no secret; it never appears in logs, errors, metrics or admin output.',
      }),
    ),
    timeout: T.Optional({ ...Duration, description: 'Per request; default 10s.' }),
  },
  { additionalProperties: false },
);

export const FileSinkSettings = T.Object(
  {
    ...common,
    type: T.Literal('file'),
    path: T.String({
      minLength: 1,
      description: 'A JSON-lines file: each batch is appended and fsynced before the cursor moves.',
    }),
  },
  { additionalProperties: false },
);

export const AuditSinksSettings = T.Array(T.Union([HttpSinkSettings, FileSinkSettings]), {
  description:
    'Where the integrated log is shipped, in seq order, at least once (each line carries its seq and event id for de-duplication). One replica ships (the store lease `audit-shipper`); each sink’s cursor is in the store.',
});

export const AuditPublishSettings = T.Object(
  {
    file: T.Optional(
      T.String({
        minLength: 1,
        description:
          'The latest signed checkpoint, as plain text, replaced atomically when a new one is signed.',
      }),
    ),
    history: T.Optional(
      T.String({
        minLength: 1,
        description:
          'Every signed checkpoint, appended in order as JSON lines `{"treeSize","at","note"}` and fsynced.',
      }),
    ),
    url: T.Optional(
      T.String({
        pattern: '^https?://',
        description:
          'Receives a POST (text/plain) of each newest signed checkpoint, retried until it answers 2xx.',
      }),
    ),
    token: T.Optional(
      T.String({
        minLength: 1,
        pattern: '^[\\x21-\\x7e]+$',
        description: 'Bearer token for `url` (write it as `${VAR}`).',
      }),
    ),
    retry: T.Optional(Retry),
    timeout: T.Optional({ ...Duration, description: 'Per request to `url`; default 10s.' }),
  },
  {
    additionalProperties: false,
    description:
      'Publishing each new signed checkpoint outside the gateway, so an operator with database access cannot rewrite history unseen.',
  },
);

export type AuditSinkConfig = Static<typeof HttpSinkSettings> | Static<typeof FileSinkSettings>;
export type AuditPublishConfig = Static<typeof AuditPublishSettings>;
export type RetryConfig = Static<typeof Retry>;
