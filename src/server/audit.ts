/**
 * The gateway's audit services, built when `audit.enabled` and the store is open: the process's
 * durable outbox fed from the event bus, the sequencer (the lease holder builds the tree and signs
 * checkpoints) and the reads the admin API exports from.
 *
 * The signing key: `audit.signingKey` (a PEM file), else SLUICE_AUDIT_KEY (PEM text or a file
 * path). Without either, the embedded store generates one into its data directory
 * (`audit-signing-key.pem`, mode 0600) with a warning, and an in-memory store gets a key that lives
 * as long as the process; PostgreSQL refuses to start, since every replica must sign with one key.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { type NoteSigner, noteSigner, signerVkey } from '../audit/checkpoint.js';
import { AuditLogStore } from '../audit/log-store.js';
import { FileOutbox, storeSink } from '../audit/outbox.js';
import { AuditRetention, retentionMs, retentionOptions } from '../audit/retention.js';
import { AUDIT_EVENT_TYPES, type AuditConfig } from '../audit/schema.js';
import { AuditSequencer } from '../audit/sequencer.js';
import { AuditShipping } from '../audit/sinks/index.js';
import { loadSubjectKek } from '../audit/subjects/kek.js';
import { SubjectKeys } from '../audit/subjects/keys.js';
import { AuditSubjects } from '../audit/subjects/service.js';
import type { Config } from '../config/schema.js';
import { ms } from '../config/units.js';
import { DEFAULT_DATA_DIR, storeOptionsFrom } from '../store/open.js';
import type { Store } from '../store/store.js';
import type { EventBus } from '../telemetry/events.js';
import { RecordAcks } from './audit-acks.js';

export const DEFAULT_AUDIT_ORIGIN = 'sluice/audit';

function loadSigner(
  cfg: AuditConfig,
  origin: string,
  embedded: { dataDir?: string } | undefined,
  env: NodeJS.ProcessEnv,
  logger: Pick<Logger, 'warn'>,
): NoteSigner {
  const fromEnv = env.SLUICE_AUDIT_KEY;
  const pem =
    cfg.signingKey !== undefined
      ? readFileSync(resolve(cfg.signingKey), 'utf8')
      : fromEnv !== undefined && fromEnv.length > 0
        ? fromEnv.trimStart().startsWith('-----')
          ? fromEnv
          : readFileSync(resolve(fromEnv), 'utf8')
        : undefined;
  if (pem !== undefined) return noteSigner(origin, createPrivateKey(pem));
  if (!embedded)
    throw new Error(
      'audit.enabled with PostgreSQL needs a signing key shared by every replica: set audit.signingKey or SLUICE_AUDIT_KEY',
    );
  if (embedded.dataDir === undefined) {
    logger.warn(
      { event: 'audit_key_ephemeral' },
      'no audit signing key: using one that lives as long as this process (in-memory store)',
    );
    return noteSigner(origin, generateKeyPairSync('ed25519').privateKey);
  }
  const file = join(embedded.dataDir, 'audit-signing-key.pem');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    const key = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' });
    writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    logger.warn(
      { event: 'audit_key_generated', file },
      'no audit signing key configured: generated one in the data directory; back it up and pin its vkey',
    );
  }
  return noteSigner(origin, createPrivateKey(readFileSync(file, 'utf8')));
}

export class AuditServices {
  private unsubscribe: (() => void) | undefined;
  /** Answered means recorded: the outbox's acknowledgement of each request's events, until it settles. */
  private readonly acks = new RecordAcks();
  /** Sinks, dead letters and checkpoint publishing (`audit.sinks`, `audit.publish`). */
  shipping: AuditShipping | undefined;
  /** `audit.retention`: archive and prune, run by the lease holder every `retention.every`. */
  retention: AuditRetention | undefined;
  private retentionTimer: NodeJS.Timeout | undefined;
  private retentionRun: Promise<unknown> | undefined;

  private constructor(
    readonly outbox: FileOutbox,
    readonly sequencer: AuditSequencer,
    readonly log: AuditLogStore,
    /** The vkey of the signing key: what auditors pin. */
    readonly vkey: string,
    /** Per-subject sealing, reading, erasure and export (src/audit/subjects). */
    readonly subjects: AuditSubjects,
  ) {}

  /** Opens the audit services when `audit.enabled`; undefined otherwise. */
  static async open(
    config: Config,
    store: Store | undefined,
    events: EventBus,
    logger: Logger,
    env: NodeJS.ProcessEnv,
    registry?: Registry,
  ): Promise<AuditServices | undefined> {
    const cfg = config.audit;
    if (cfg?.enabled !== true) return undefined;
    if (!store) throw new Error('audit.enabled needs the store: set `store`');
    const opts = storeOptionsFrom(config.store, env);
    const embedded = store.kind === 'pglite' ? { dataDir: opts.dataDir } : undefined;
    const origin = cfg.origin ?? DEFAULT_AUDIT_ORIGIN;
    const signer = loadSigner(cfg, origin, embedded, env, logger);
    const vkey = signerVkey(signer);
    const types = new Set<string>(cfg.events ?? AUDIT_EVENT_TYPES);
    // Admin changes come from their own transaction (the admin_changes trigger), not from the bus.
    await store.query('UPDATE audit_tree SET capture = $1 WHERE id = 1', [types.has('admin_change')]);
    const dir = resolve(cfg.outbox?.dir ?? join(opts.dataDir ?? DEFAULT_DATA_DIR, 'audit-outbox'));
    const replica = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const outbox = await FileOutbox.open({ dir, replica, sink: storeSink(store), logger });
    const publicKeys = [vkey, ...(cfg.publicKeys ?? [])];
    const keys = await SubjectKeys.open(store, loadSubjectKek(cfg.subjectKey, env, store.kind, logger));
    const log = new AuditLogStore(store, { origin, publicKeys });
    const subjects = new AuditSubjects(store, keys, log, { origin, publicKeys });
    const sequencer = new AuditSequencer(
      store,
      {
        replica,
        origin,
        signers: [signer],
        checkpointEvery: cfg.checkpoint?.entries,
        checkpointSeconds: ms(cfg.checkpoint?.every, 60_000) / 1000,
        transform: subjects.seal,
      },
      logger,
    );
    const s = new AuditServices(outbox, sequencer, log, vkey, subjects);
    s.unsubscribe = events.on((e) => {
      if (e.type === 'admin_change' || !types.has(e.type)) return;
      const ack = outbox.append(e);
      // The refusal of the request that caused it waits for this (src/dataplane/stages/reply.ts).
      if ('requestId' in e && e.requestId.length > 0) s.acks.track(e.requestId, ack);
      else ack.catch(() => {}); // logged by the outbox; an unacknowledged event
    });
    sequencer.start();
    s.shipping = AuditShipping.open(cfg, store, replica, logger, registry);
    if (cfg.retention) {
      const retention = new AuditRetention(
        store,
        retentionOptions(cfg.retention, { origin, publicKeys: [vkey, ...(cfg.publicKeys ?? [])], replica }),
        logger,
      );
      s.retention = retention;
      const every = retentionMs(cfg.retention.every ?? '1h');
      s.retentionTimer = setInterval(() => {
        if (!sequencer.leader || s.retentionRun) return;
        s.retentionRun = retention
          .run()
          .catch((err: Error) =>
            logger.warn({ event: 'audit_retention_failed', err: err.message }, 'audit retention run failed'),
          )
          .finally(() => {
            s.retentionRun = undefined;
          });
      }, every);
      s.retentionTimer.unref();
    }
    logger.info({ event: 'audit_started', origin, vkey, outbox: dir }, 'audit log on');
    return s;
  }

  /**
   * The acknowledgement of the audited events request `requestId` emitted that are not on disk yet
   * (undefined: none): its answer is written once this resolves (docs/audit-log.md, durability).
   */
  pendingAck(requestId: string): Promise<unknown> | undefined {
    return this.acks.pending(requestId);
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    await this.shipping?.close();
    clearInterval(this.retentionTimer);
    await this.retentionRun;
    await this.outbox.close();
    await this.sequencer.close();
  }
}
