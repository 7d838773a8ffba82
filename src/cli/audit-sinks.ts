/**
 * `sluice audit dead-letters [--sink NAME] [--replay [--id N ...]]`: the sinks (cursor, lag) and
 * their dead letters, or a replay of them through the admin API.
 * `sluice audit checkpoint [--out FILE]`: the latest signed checkpoint as plain text, to e-mail,
 * publish or keep as an anchor for `sluice audit verify --anchor`.
 */
import { writeFileSync } from 'node:fs';
import {
  AdminError,
  adminOptionsHelp,
  type CommandSpec,
  json,
  orDash,
  runAdminCommand,
  table,
  UsageError,
} from './admin-client.js';

export const auditSinksHelp = `  sluice audit dead-letters [--sink NAME] [--replay [--id N ...] [--limit N]] [admin options]
  sluice audit checkpoint [--out FILE] [admin options]

dead-letters: each sink (where it ships, its next seq, how far behind it is) and the batches every
delivery try failed for (permission audit.read). --replay sends them again, oldest first, one try
each: a delivered one is deleted; exit 1 when one failed (permission audit.operate: admin).

checkpoint: the latest signed checkpoint note, as plain text (permission audit.read).`;

interface Listing {
  sinks: {
    name: string;
    kind: string;
    target: string;
    nextSeq: number | null;
    lag: number | null;
    deadLetters: number;
  }[];
  deadLetters: {
    id: number;
    sink: string;
    firstSeq: number;
    lastSeq: number;
    entries: number;
    attempts: number;
    error: string;
    failedAt: string;
  }[];
}

interface Replay {
  replayed: { id: number; sink: string; entries: number }[];
  failed: { id: number; sink: string; error: string }[];
  skipped: number;
  remaining: number;
}

const int = (v: unknown, what: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${what}: not a positive integer: ${String(v)}`);
  return n;
};

const spec = (help: string): CommandSpec => ({
  name: 'audit',
  help,
  options: {
    sink: { type: 'string' },
    replay: { type: 'boolean' },
    id: { type: 'string', multiple: true },
    limit: { type: 'string' },
    out: { type: 'string' },
  },
  subcommands: {
    async 'dead-letters'(client, _positionals, values) {
      const sink = values.sink as string | undefined;
      const limit = values.limit === undefined ? undefined : int(values.limit, '--limit');
      if (values.replay) {
        const ids = (values.id as string[] | undefined)?.map((v) => int(v, '--id'));
        const r = await client.request<Replay>('POST', '/admin/v1/audit/dead-letters/replay', {
          ...(ids ? { ids } : {}),
          ...(sink ? { sink } : {}),
          ...(limit ? { limit } : {}),
        });
        const text = values.json
          ? json(r)
          : [
              `replayed ${r.replayed.length} dead letter(s) (${r.replayed.reduce((n, x) => n + x.entries, 0)} entries), ${r.failed.length} failed, ${r.skipped} not tried, ${r.remaining} left`,
              ...r.failed.map((f) => `  failed: #${f.id} (${f.sink}): ${f.error}`),
            ].join('\n');
        if (r.failed.length > 0) throw new AdminError(text);
        return text;
      }
      if (values.id !== undefined) throw new UsageError('--id goes with --replay');
      const q = new URLSearchParams();
      if (sink) q.set('sink', sink);
      if (limit) q.set('limit', String(limit));
      const l = await client.request<Listing>(
        'GET',
        `/admin/v1/audit/dead-letters${q.size > 0 ? `?${q}` : ''}`,
      );
      if (values.json) return json(l);
      return [
        table(
          ['SINK', 'KIND', 'TARGET', 'NEXT SEQ', 'LAG', 'DEAD LETTERS'],
          l.sinks.map((s) => [
            s.name,
            s.kind,
            s.target,
            orDash(s.nextSeq?.toString()),
            orDash(s.lag?.toString()),
            String(s.deadLetters),
          ]),
        ),
        '',
        l.deadLetters.length === 0
          ? 'no dead letters'
          : table(
              ['ID', 'SINK', 'SEQ', 'ENTRIES', 'ATTEMPTS', 'FAILED AT', 'ERROR'],
              l.deadLetters.map((d) => [
                String(d.id),
                d.sink,
                `${d.firstSeq}-${d.lastSeq}`,
                String(d.entries),
                String(d.attempts),
                d.failedAt,
                d.error,
              ]),
            ),
      ].join('\n');
    },
    async checkpoint(client, _positionals, values) {
      const cp = await client.request<{ treeSize: number; note: string; at: string; publicKeys: string[] }>(
        'GET',
        '/admin/v1/audit/checkpoints/latest',
      );
      if (values.json) return json(cp);
      if (typeof values.out === 'string') {
        writeFileSync(values.out, cp.note);
        return `wrote the checkpoint of tree size ${cp.treeSize} to ${values.out}`;
      }
      return cp.note.replace(/\n$/, '');
    },
  },
});

export function runAuditSinks(args: string[], help: string): Promise<number> {
  return runAdminCommand(spec(`${help}\n\n${adminOptionsHelp}`), args);
}
