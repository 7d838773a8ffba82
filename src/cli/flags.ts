/** `sluice flags list|get|set|delete|history`, through the admin API (docs/flags.md#cli). */
import { readFileSync } from 'node:fs';
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

const help = `Usage: sluice flags <command> [options]

Commands:
  list                                  all flags
  get KEY                               one flag and its definition
  set KEY --file FILE [--if-revision N]  create or replace a flag from a JSON definition
                                        (FILE '-' reads standard input)
  set KEY --bool --on|--off [--if-revision N]
                                        a boolean flag, on or off for everyone
  delete KEY [--if-revision N]          delete a flag (its history stays)
  history KEY [--limit N]               who changed the flag, when, before and after

--if-revision N applies the change only if the flag is at revision N (0: only if it is new).

${adminOptionsHelp}

Roles needed: list/get/history viewer; set/delete operator. See docs/flags.md.`;

interface FlagView {
  key: string;
  revision: number;
  bucketing: string;
  spec: {
    description?: string;
    enabled: boolean;
    variants: Record<string, unknown>;
    defaultVariant: string;
    rules?: unknown[];
    rollout?: { by: string; variants: { variant: string; weight: number }[] };
  };
  createdAt: string;
  updatedAt: string;
  updatedBy: string;
}

interface ChangeView {
  id: string;
  at: string;
  actor: string;
  role: string;
  action: string;
  before: { revision?: number } | null;
  after: { revision?: number } | null;
}

const path = (key: string, suffix = '') => `/admin/v1/flags/${encodeURIComponent(key)}${suffix}`;

const rolloutText = (f: FlagView) =>
  f.spec.rollout
    ? `by ${f.spec.rollout.by}: ${f.spec.rollout.variants.map((v) => `${v.variant} ${v.weight}%`).join(', ')}`
    : '-';

function describe(f: FlagView): string {
  return fields([
    ['key', f.key],
    ['revision', String(f.revision)],
    ['enabled', String(f.spec.enabled)],
    ['description', orDash(f.spec.description)],
    [
      'variants',
      Object.entries(f.spec.variants)
        .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
        .join(', '),
    ],
    ['default', f.spec.defaultVariant],
    ['rules', String(f.spec.rules?.length ?? 0)],
    ['rollout', rolloutText(f)],
    ['bucketing', f.bucketing],
    ['updated', `${f.updatedAt} by ${f.updatedBy}`],
    ['created', f.createdAt],
  ]);
}

function ifMatch(v: Record<string, unknown>): Record<string, string> | undefined {
  const r = v['if-revision'];
  if (r === undefined) return undefined;
  if (typeof r !== 'string' || !/^\d+$/.test(r))
    throw new UsageError('--if-revision: expected a revision number');
  return { 'if-match': `"${r}"` };
}

function definitionOf(v: Record<string, unknown>): unknown {
  if (v.bool === true) {
    if ((v.on === true) === (v.off === true))
      throw new UsageError('--bool needs exactly one of --on or --off');
    return {
      enabled: true,
      variants: { on: true, off: false },
      defaultVariant: v.on === true ? 'on' : 'off',
    };
  }
  const file = v.file;
  if (typeof file !== 'string') throw new UsageError('set needs --file FILE (or --bool --on|--off)');
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new UsageError(`--file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`--file: not JSON: ${(err as Error).message}`);
  }
}

export function runFlags(args: string[]): Promise<number> {
  return runAdminCommand(
    {
      name: 'flags',
      help,
      options: {
        file: { type: 'string' },
        bool: { type: 'boolean' },
        on: { type: 'boolean' },
        off: { type: 'boolean' },
        'if-revision': { type: 'string' },
        limit: { type: 'string' },
      },
      subcommands: {
        async list(c, pos, v) {
          expectArgs(pos);
          const r = await c.request<{ flags: FlagView[] }>('GET', '/admin/v1/flags');
          if (v.json) return json(r);
          return table(
            ['KEY', 'REV', 'ENABLED', 'DEFAULT', 'RULES', 'ROLLOUT', 'UPDATED'],
            r.flags.map((f) => [
              f.key,
              String(f.revision),
              String(f.spec.enabled),
              f.spec.defaultVariant,
              String(f.spec.rules?.length ?? 0),
              rolloutText(f),
              f.updatedAt,
            ]),
          );
        },
        async get(c, pos, v) {
          const [key] = expectArgs(pos, 'key');
          const f = await c.request<FlagView>('GET', path(key!));
          return v.json ? json(f) : describe(f);
        },
        async set(c, pos, v) {
          const [key] = expectArgs(pos, 'key');
          const f = await c.request<FlagView>('PUT', path(key!), definitionOf(v), ifMatch(v));
          return v.json ? json(f) : describe(f);
        },
        async delete(c, pos, v) {
          const [key] = expectArgs(pos, 'key');
          await c.request('DELETE', path(key!), undefined, ifMatch(v));
          return v.json ? json({ deleted: key }) : `deleted flag ${key}`;
        },
        async history(c, pos, v) {
          const [key] = expectArgs(pos, 'key');
          const limit = v.limit === undefined ? '' : `?limit=${encodeURIComponent(String(v.limit))}`;
          const r = await c.request<{ changes: ChangeView[] }>('GET', path(key!, `/history${limit}`));
          if (v.json) return json(r);
          return table(
            ['AT', 'ACTOR', 'ROLE', 'ACTION', 'REVISION'],
            r.changes.map((ch) => [
              ch.at,
              ch.actor,
              ch.role,
              ch.action,
              `${ch.before?.revision ?? '-'} → ${ch.after?.revision ?? '-'}`,
            ]),
          );
        },
      },
    },
    args,
  );
}
