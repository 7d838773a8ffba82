/** `sluice tenants list|create|get|update|suspend|resume|delete|export`, through the admin API. */
import { writeFileSync } from 'node:fs';
import {
  adminOptionsHelp,
  expectArgs,
  fields,
  json,
  orDash,
  runAdminCommand,
  type Subcommand,
  table,
  UsageError,
} from './admin-client.js';

const help = `Usage: sluice tenants <command> [options]

Commands:
  list                                  all tenants
  get ID                                one tenant
  create ID --name NAME [--region R] [--plan P] [--label K=V ...]
  update ID [--name NAME] [--region R|-] [--plan P|-] [--label K=V ...]
                                        change a tenant ('-' clears region or plan;
                                        --label replaces all labels)
  suspend ID                            refuse the tenant's requests (403) on every replica
  resume ID                             serve them again
  delete ID                             delete the tenant and all its API keys
  export ID [--out FILE]                everything Sluice holds about the tenant, one JSON
                                        document (its audit part verifies offline:
                                        sluice audit verify --bundle FILE --key VKEY)

${adminOptionsHelp}

Roles needed: list/get viewer; create/update operator; suspend/resume security; delete admin;
export auditor.`;

interface TenantView {
  id: string;
  name: string;
  region: string | null;
  plan: string | null;
  labels: Record<string, string>;
  status: string;
  createdAt: string;
  updatedAt: string;
}

function labelsOf(values: Record<string, unknown>): Record<string, string> | undefined {
  const list = values.label as string[] | undefined;
  if (list === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i <= 0) throw new UsageError(`--label ${l}: expected KEY=VALUE`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

const labelsText = (l: Record<string, string>) =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

function describe(t: TenantView): string {
  return fields([
    ['id', t.id],
    ['name', t.name],
    ['status', t.status],
    ['region', orDash(t.region)],
    ['plan', orDash(t.plan)],
    ['labels', orDash(labelsText(t.labels))],
    ['created', t.createdAt],
    ['updated', t.updatedAt],
  ]);
}

const path = (id: string, suffix = '') => `/admin/v1/tenants/${encodeURIComponent(id)}${suffix}`;

/** A subcommand on one tenant that answers with the tenant. */
function onOne(method: string, suffix: string, body?: (v: Record<string, unknown>) => unknown): Subcommand {
  return async (c, pos, v) => {
    const [id] = expectArgs(pos, 'id');
    const t = await c.request<TenantView>(method, path(id!, suffix), body?.(v));
    return v.json ? json(t) : describe(t);
  };
}

const clearable = (v: unknown) => (v === '-' ? null : (v as string | undefined));

export function runTenants(args: string[]): Promise<number> {
  return runAdminCommand(
    {
      name: 'tenants',
      help,
      options: {
        name: { type: 'string' },
        region: { type: 'string' },
        plan: { type: 'string' },
        label: { type: 'string', multiple: true },
        out: { type: 'string' },
      },
      subcommands: {
        async list(c, pos, v) {
          expectArgs(pos);
          const r = await c.request<{ tenants: TenantView[] }>('GET', '/admin/v1/tenants');
          if (v.json) return json(r);
          return table(
            ['ID', 'NAME', 'STATUS', 'REGION', 'PLAN', 'CREATED'],
            r.tenants.map((t) => [t.id, t.name, t.status, orDash(t.region), orDash(t.plan), t.createdAt]),
          );
        },
        get: onOne('GET', ''),
        async create(c, pos, v) {
          const [id] = expectArgs(pos, 'id');
          if (typeof v.name !== 'string') throw new UsageError('--name is required');
          const body: Record<string, unknown> = { id, name: v.name };
          if (v.region !== undefined) body.region = v.region;
          if (v.plan !== undefined) body.plan = v.plan;
          const labels = labelsOf(v);
          if (labels) body.labels = labels;
          const t = await c.request<TenantView>('POST', '/admin/v1/tenants', body);
          return v.json ? json(t) : describe(t);
        },
        update: onOne('PATCH', '', (v) => {
          const body: Record<string, unknown> = {};
          if (v.name !== undefined) body.name = v.name;
          if (v.region !== undefined) body.region = clearable(v.region);
          if (v.plan !== undefined) body.plan = clearable(v.plan);
          const labels = labelsOf(v);
          if (labels) body.labels = labels;
          if (Object.keys(body).length === 0) throw new UsageError('nothing to change');
          return body;
        }),
        suspend: onOne('POST', '/suspend'),
        resume: onOne('POST', '/resume'),
        async delete(c, pos, v) {
          const [id] = expectArgs(pos, 'id');
          await c.request('DELETE', path(id!));
          return v.json ? json({ deleted: id }) : `deleted tenant ${id}`;
        },
        async export(c, pos, v) {
          const [id] = expectArgs(pos, 'id');
          const archive = await c.request<{ keys: unknown[]; audit: { entries: unknown[] } | null }>(
            'GET',
            path(id!, '/export'),
          );
          const text = `${JSON.stringify(archive)}\n`;
          if (typeof v.out !== 'string') {
            process.stdout.write(text);
            return '';
          }
          writeFileSync(v.out, text, { mode: 0o600 });
          return `wrote tenant ${id}: ${archive.keys.length} keys, ${archive.audit?.entries.length ?? 0} audit entries to ${v.out}`;
        },
      },
    },
    args,
  );
}
