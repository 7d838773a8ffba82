/**
 * Portability: everything Sluice holds about one tenant, as one machine-readable JSON document
 * (format `sluice-tenant-export/v1`): the tenant record, its API keys' metadata (never a secret or a
 * hash: the repository never reads them), its persisted usage rows, the admin changes to it and its
 * keys, and the audit entries naming it as a selection bundle (bundle.ts) with inclusion proofs to
 * the latest checkpoint, every checkpoint and the vkeys, so the audit part verifies offline
 * (`sluice audit verify --bundle archive.json --key VKEY`).
 */
import type { AuditBundle } from '../audit/bundle.js';
import { AuditLogError, type AuditLogStore } from '../audit/log-store.js';
import type { AuditSubjects } from '../audit/subjects/service.js';
import type { TenancyRepository } from '../tenancy/repository.js';
import { changeView } from './routes/changes.js';
import { keyView, tenantView } from './routes/tenants.js';

export const TENANT_ARCHIVE_FORMAT = 'sluice-tenant-export/v1';

export interface UsageRecord {
  metric: string;
  period: string;
  starts: string;
  used: number;
  updatedAt: string;
}

export interface TenantArchive {
  format: typeof TENANT_ARCHIVE_FORMAT;
  exportedAt: string;
  tenant: ReturnType<typeof tenantView>;
  keys: ReturnType<typeof keyView>[];
  /** Every usage row the store holds for the tenant (quota counts, cost in millionths), oldest first. */
  usage: UsageRecord[];
  /** The admin change log's records targeting the tenant or one of its keys, oldest first. */
  changes: ReturnType<typeof changeView>[];
  /** The audit entries naming the tenant, proven to the latest checkpoint; null when there is none. */
  audit: AuditBundle | null;
  /** Why `audit` is null (the log is off, or has no checkpoint yet). */
  auditNote?: string;
}

/** The archive of a tenant; undefined when there is no such tenant. */
export async function tenantArchive(
  repo: TenancyRepository,
  audit:
    | {
        log: Pick<AuditLogStore, 'selectionBundle'>;
        subjects?: Pick<AuditSubjects, 'openBundle' | 'pseudonymsOf'>;
      }
    | undefined,
  id: string,
  now = new Date(),
): Promise<TenantArchive | undefined> {
  const tenant = await repo.getTenant(id);
  if (!tenant) return undefined;
  const keys = await repo.listKeys(id);
  const db = repo.store;
  const usage = await db.query<{
    metric: string;
    period: string;
    starts: string;
    used: number;
    updated_at: unknown;
  }>(
    `SELECT metric, period, starts::text AS starts, used::float8 AS used, updated_at FROM usage_counters
     WHERE tenant_id = $1 ORDER BY starts, period, metric`,
    [id],
  );
  const targets = [`tenant:${id}`, ...keys.map((k) => `key:${k.id}`)];
  const changes = await db.query<Parameters<typeof changeView>[0]>(
    `SELECT id::text AS id, at, actor, role, action, target, before, after FROM admin_changes
     WHERE target = ANY($1::text[]) ORDER BY admin_changes.id`,
    [targets],
  );
  let bundle: AuditBundle | null = null;
  let auditNote: string | undefined;
  if (!audit) auditNote = 'the audit log is off';
  else
    try {
      const selection = await audit.log.selectionBundle({ tenant: id }, audit.subjects?.pseudonymsOf);
      bundle = audit.subjects ? await audit.subjects.openBundle(selection) : selection;
    } catch (err) {
      if (!(err instanceof AuditLogError && err.kind === 'not-found')) throw err;
      auditNote = err.message;
    }
  const nowMs = now.getTime();
  return {
    format: TENANT_ARCHIVE_FORMAT,
    exportedAt: now.toISOString(),
    tenant: tenantView(tenant),
    keys: keys.map((k) => keyView(k, nowMs)),
    usage: usage.map((u) => ({
      metric: u.metric,
      period: u.period,
      starts: u.starts,
      used: Number(u.used),
      updatedAt: new Date(u.updated_at as string).toISOString(),
    })),
    changes: changes.map(changeView),
    audit: bundle,
    ...(auditNote === undefined ? {} : { auditNote }),
  };
}

/**
 * The audit bundle inside a document: a tenant archive's `audit`, or the document itself (an export
 * bundle). `sluice audit verify --bundle` takes either.
 */
export function auditBundleOf(doc: unknown): unknown {
  if (
    typeof doc === 'object' &&
    doc !== null &&
    (doc as { format?: unknown }).format === TENANT_ARCHIVE_FORMAT
  )
    return (doc as { audit?: unknown }).audit;
  return doc;
}
