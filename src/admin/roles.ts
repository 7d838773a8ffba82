/**
 * Roles of the admin API and what each may do. This table is the one source: the admin server
 * enforces it (every route names the permission it needs), docs/admin-api.md shows it, and the
 * role-matrix test checks it against an expectation written out independently.
 */

export const ROLES = ['viewer', 'operator', 'security', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What an endpoint needs. `public` endpoints (health, metrics, the OpenAPI document) need no credentials. */
export const PERMISSIONS = {
  'config.read': 'Read the running config (source text, never secrets) and its version.',
  'health.read': 'See routes, upstream groups and targets, and their health.',
  'config.reload': 'Reload the config file.',
  'tenants.read': 'List and read tenants.',
  'tenants.write': 'Create tenants and change their name, region, plan and labels.',
  'tenants.suspend': 'Suspend and resume tenants.',
  'tenants.delete': 'Delete a tenant (and with it its keys).',
  'keys.read': 'List the API keys of a tenant: metadata only, never secrets or hashes.',
  'keys.write': 'Create API keys (the secret is shown once) and revoke them.',
  'changes.read': 'Read the admin change log (who changed what, before and after).',
  'usage.read': "Read a tenant's quota usage and spend per provider.",
  'releases.read': 'See releases: state, step, weights, the figures of each judgement, their history.',
  'releases.operate': 'Start, pause, resume, promote and abort releases.',
  'flags.read': 'List and read feature flags and their change history.',
  'flags.write': 'Create, change and delete feature flags.',
  'audit.read': 'Read the audit log’s signed checkpoints and export verifiable bundles of it.',
  'audit.operate': 'Replay the audit sinks’ dead letters (send their entries out again).',
  'audit.erase': 'Erase a data subject from the audit log (its key is destroyed; the erasure is audited).',
  'tenants.export':
    'Export everything Sluice holds about a tenant: its record, keys’ metadata, usage, admin changes and audit entries with their proofs.',
} as const;
export type Permission = keyof typeof PERMISSIONS;
export type RoutePermission = Permission | 'public';

const viewer: readonly Permission[] = [
  'config.read',
  'health.read',
  'tenants.read',
  'keys.read',
  'usage.read',
  'releases.read',
  'flags.read',
];

/** The permission matrix. */
export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = {
  viewer,
  operator: [...viewer, 'config.reload', 'tenants.write', 'releases.operate', 'flags.write'],
  security: [...viewer, 'keys.write', 'tenants.suspend', 'changes.read'],
  auditor: [...viewer, 'changes.read', 'audit.read', 'tenants.export'],
  admin: Object.keys(PERMISSIONS) as Permission[],
};

export const ROLE_SUMMARY: Readonly<Record<Role, string>> = {
  viewer: 'Reads config, version, health, tenants, key metadata, usage, releases and flags.',
  operator:
    'Viewer, plus config reload, creating/updating tenants, operating releases and changing feature flags.',
  security:
    'Viewer, plus creating/revoking API keys, suspending/resuming tenants and reading the change log.',
  auditor:
    'Viewer, plus reading the change log and the audit log (checkpoints, export, query, a data subject’s export) and exporting a tenant’s data.',
  admin: 'Everything, including deleting tenants and erasing data subjects from the audit log.',
};

export function isRole(s: string): s is Role {
  return (ROLES as readonly string[]).includes(s);
}

export function isPermission(s: string): s is RoutePermission {
  return s === 'public' || Object.hasOwn(PERMISSIONS, s);
}

/** Whether any of the roles grants the permission. */
export function allows(roles: readonly Role[], permission: Permission): boolean {
  for (const r of roles) if (ROLE_PERMISSIONS[r].includes(permission)) return true;
  return false;
}

/** The matrix as a Markdown table (docs/admin-api.md carries it; a test keeps the two equal). */
export function permissionMatrixMarkdown(): string {
  const head = `| permission | ${ROLES.join(' | ')} | what it allows |`;
  const rule = `|---|${ROLES.map(() => ':-:').join('|')}|---|`;
  const rows = (Object.keys(PERMISSIONS) as Permission[]).map(
    (p) =>
      `| \`${p}\` | ${ROLES.map((r) => (ROLE_PERMISSIONS[r].includes(p) ? '✓' : '')).join(' | ')} | ${PERMISSIONS[p]} |`,
  );
  return [head, rule, ...rows].join('\n');
}
