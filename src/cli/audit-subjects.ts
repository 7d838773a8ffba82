/**
 * `sluice audit erase SUBJECT` (permission audit.erase): crypto-shreds a data subject through the
 * admin API. `sluice audit subject-export SUBJECT [--out FILE]` (audit.read): every entry naming the
 * subject, opened, with inclusion proofs to the latest checkpoint: a bundle `sluice audit verify` checks.
 * SUBJECT is `principal:<id>`, `ip:<address>` or `admin:<name>`.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AdminError, adminOptions, clientFrom, json, UsageError } from './admin-client.js';

export const auditSubjectsHelp = `  sluice audit erase SUBJECT [admin options]
  sluice audit subject-export SUBJECT [--out FILE] [admin options]`;

export const auditSubjectsHelpText = `erase: destroys the subject's key (SUBJECT: principal:<id>, ip:<address> or admin:<name>): its
fields in the log can no longer be read anywhere, every proof still verifies, and the erasure is an
audit entry naming only the subject's pseudonym (role admin, permission audit.erase).

subject-export: every entry naming SUBJECT under the latest checkpoint, opened, with its inclusion
proof and the checkpoint, to FILE (default: standard output); \`sluice audit verify\` checks it.`;

export async function runAuditSubject(sub: 'erase' | 'subject-export', args: string[]): Promise<number> {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: { ...adminOptions, out: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    console.error(`sluice audit ${sub}: ${(err as Error).message}\n\n${auditSubjectsHelp}`);
    return 2;
  }
  if (values.help) {
    console.log(`${auditSubjectsHelp}\n\n${auditSubjectsHelpText}`);
    return 0;
  }
  const [subject, ...extra] = positionals;
  if (subject === undefined || extra.length > 0 || (sub === 'erase' && values.out !== undefined)) {
    console.error(`sluice audit ${sub}: one SUBJECT is required\n\n${auditSubjectsHelp}`);
    return 2;
  }
  const path = `/admin/v1/audit/subjects/${encodeURIComponent(subject)}/${sub === 'erase' ? 'erase' : 'export'}`;
  try {
    const client = clientFrom(values as { 'admin-url'?: string; 'token-file'?: string });
    if (sub === 'erase') {
      const r = await client.request<{ pseudonym: string; pending: number; event: string }>('POST', path);
      if (values.json) console.log(json(r));
      else
        console.log(
          `erased ${subject}: key of ${r.pseudonym} destroyed (${r.pending} pending events sealed first), audited as ${r.event}`,
        );
      return 0;
    }
    const bundle = await client.request<{ entries: unknown[] }>('GET', path);
    const text = `${JSON.stringify(bundle)}\n`;
    if (typeof values.out === 'string') {
      writeFileSync(values.out, text);
      console.log(`wrote ${bundle.entries.length} entries of ${subject} to ${values.out}`);
    } else process.stdout.write(text);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`sluice audit ${sub}: ${err.message}`);
      return 2;
    }
    if (err instanceof AdminError) {
      console.error(`sluice audit ${sub}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
