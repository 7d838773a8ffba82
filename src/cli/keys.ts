/** `sluice keys list|create|revoke`, through the admin API. */
import {
  adminOptionsHelp,
  expectArgs,
  fields,
  json,
  orDash,
  runAdminCommand,
  table,
  UsageError,
} from './admin-client.js';

const help = `Usage: sluice keys <command> [options]

Commands:
  list TENANT                                   the tenant's API keys (never their secrets)
  create TENANT --name NAME [--scope S ...] [--expires WHEN]
                                                a new key, printed this once: store it now
  revoke TENANT KEY_ID                          refuse the key at once, on every replica

WHEN is an ISO 8601 time (2027-01-31T00:00:00Z) or a duration from now: 90d, 12h, 30m.

${adminOptionsHelp}

Roles needed: list viewer; create/revoke security.`;

interface KeyView {
  id: string;
  tenantId: string;
  name: string;
  prefix: string;
  scopes: string[];
  expiresAt: string | null;
  revokedAt: string | null;
  createdAt: string;
  lastUsedAt: string | null;
  status: string;
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90d`, `12h`, `30m` from now, or an ISO time. */
export function expiryOf(s: string, now = Date.now()): string {
  const m = /^([0-9]+)([mhd])$/.exec(s);
  if (m) return new Date(now + Number(m[1]) * UNIT_MS[m[2]!]!).toISOString();
  const t = Date.parse(s);
  if (!/^\d{4}-\d{2}-\d{2}/.test(s) || Number.isNaN(t))
    throw new UsageError(`--expires ${s}: expected an ISO 8601 time or a duration such as 90d`);
  return new Date(t).toISOString();
}

const keysPath = (tenant: string) => `/admin/v1/tenants/${encodeURIComponent(tenant)}/keys`;

function describe(k: KeyView, extra: [string, string][] = []): string {
  return fields([
    ['id', k.id],
    ['tenant', k.tenantId],
    ['name', k.name],
    ['prefix', k.prefix],
    ['scopes', orDash(k.scopes.join(','))],
    ['status', k.status],
    ['expires', orDash(k.expiresAt)],
    ['revoked', orDash(k.revokedAt)],
    ['created', k.createdAt],
    ...extra,
  ]);
}

export function runKeys(args: string[]): Promise<number> {
  return runAdminCommand(
    {
      name: 'keys',
      help,
      options: {
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        expires: { type: 'string' },
      },
      subcommands: {
        async list(c, pos, v) {
          const [tenant] = expectArgs(pos, 'tenant');
          const r = await c.request<{ keys: KeyView[] }>('GET', keysPath(tenant!));
          if (v.json) return json(r);
          return table(
            ['ID', 'NAME', 'PREFIX', 'SCOPES', 'STATUS', 'EXPIRES', 'LAST USED'],
            r.keys.map((k) => [
              k.id,
              k.name,
              k.prefix,
              orDash(k.scopes.join(',')),
              k.status,
              orDash(k.expiresAt),
              orDash(k.lastUsedAt),
            ]),
          );
        },
        async create(c, pos, v) {
          const [tenant] = expectArgs(pos, 'tenant');
          if (typeof v.name !== 'string') throw new UsageError('--name is required');
          const body: Record<string, unknown> = { name: v.name };
          if (v.scope !== undefined) body.scopes = v.scope;
          if (typeof v.expires === 'string') body.expiresAt = expiryOf(v.expires);
          const r = await c.request<{ key: KeyView; secret: string }>('POST', keysPath(tenant!), body);
          if (v.json) return json(r);
          console.error('The key is shown this once; only its hash is kept. Store it now.');
          return describe(r.key, [['key', r.secret]]);
        },
        async revoke(c, pos, v) {
          const [tenant, keyId] = expectArgs(pos, 'tenant', 'key_id');
          const k = await c.request<KeyView>('DELETE', `${keysPath(tenant!)}/${encodeURIComponent(keyId!)}`);
          return v.json
            ? json(k)
            : `revoked key ${k.id} (${k.name}) of tenant ${k.tenantId} at ${k.revokedAt}`;
        },
      },
    },
    args,
  );
}
