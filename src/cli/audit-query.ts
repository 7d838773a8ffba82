/**
 * `sluice audit query [--since T] [--until T] [--tenant ID] [--actor A] [--type T] [--limit N]
 * [--after SEQ] [--all]`: audit entries through the admin API, one JSON line each ({seq,
 * integratedAt, entry}). One page by default (the cursor of the next is printed on stderr); --all
 * follows the pages to the end.
 */
import { parseArgs } from 'node:util';
import { AdminError, adminOptions, adminOptionsHelp, clientFrom, UsageError } from './admin-client.js';

export const queryHelp = `Usage:
  sluice audit query [--since T] [--until T] [--tenant ID] [--actor A] [--type TYPE]
                     [--limit N] [--after SEQ] [--all] [admin options]

Prints the matching audit entries in log order, one JSON line each: {"seq", "integratedAt", "entry"}.
--since/--until: the entry's time (ISO 8601; until is exclusive). --tenant: entries naming the
tenant (its events, admin changes to it or its keys, events of its keys). --actor: the actor of
admin changes, or the principal of data-plane events. --limit: entries per page (1-1000, default
100). Without --all one page is printed and the cursor for the next goes to stderr
("next: SEQ", pass it as --after). Role auditor (permission audit.read).

${adminOptionsHelp}`;

interface Page {
  entries: unknown[];
  next: string | null;
}

export async function runAuditQuery(args: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        ...adminOptions,
        since: { type: 'string' },
        until: { type: 'string' },
        tenant: { type: 'string' },
        actor: { type: 'string' },
        type: { type: 'string' },
        limit: { type: 'string' },
        after: { type: 'string' },
        all: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`sluice audit query: ${(err as Error).message}\n\n${queryHelp}`);
    return 2;
  }
  if (values.help) {
    console.log(queryHelp);
    return 0;
  }
  const q = new URLSearchParams();
  for (const name of ['since', 'until', 'tenant', 'actor', 'type', 'limit'] as const) {
    const v = values[name];
    if (typeof v === 'string') q.set(name, v);
  }
  let after = typeof values.after === 'string' ? values.after : undefined;
  try {
    const client = clientFrom(values as { 'admin-url'?: string; 'token-file'?: string });
    for (;;) {
      if (after !== undefined) q.set('after', after);
      const page = await client.request<Page>('GET', `/admin/v1/audit/entries?${q}`);
      // One write per page: JSON lines, never pretty-printed (the output is for tools).
      if (page.entries.length > 0)
        process.stdout.write(`${page.entries.map((e) => JSON.stringify(e)).join('\n')}\n`);
      if (page.next === null) return 0;
      if (!values.all) {
        console.error(`next: ${page.next}`);
        return 0;
      }
      after = page.next;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`sluice audit query: ${err.message}\n\n${queryHelp}`);
      return 2;
    }
    if (err instanceof AdminError) {
      console.error(`sluice audit query: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
