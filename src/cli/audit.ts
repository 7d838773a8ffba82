/**
 * `sluice audit verify --bundle FILE [--key VKEY ...] [--anchor FILE ...]`: checks an export bundle
 * offline (no network, no Sluice server) and names each problem and its index; `--store URL|DIR`
 * checks a live store the same way, read straight from the database (audit-live.ts).
 * `sluice audit export --out FILE [--from N] [--to N]`: writes a bundle from the admin API.
 * `sluice audit query ...`: audit-query.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { auditBundleOf } from '../admin/tenant-archive.js';
import { verifyBundle } from '../audit/verify.js';
import { AdminError, adminOptions, adminOptionsHelp, clientFrom, json } from './admin-client.js';
import { bundleFromStore } from './audit-live.js';
import { proofHelp, proofHelpText, runAuditProof } from './audit-proof.js';
import { runAuditQuery } from './audit-query.js';
import { auditSinksHelp, runAuditSinks } from './audit-sinks.js';
import { auditSubjectsHelp, auditSubjectsHelpText, runAuditSubject } from './audit-subjects.js';

const help = `Usage:
  sluice audit verify --bundle FILE [--key VKEY ...] [--anchor FILE ...] [--json]
  sluice audit verify --store URL|DIR --key VKEY [--anchor FILE ...] [--json]
  sluice audit export --out FILE [--from N] [--to N] [admin options]
${auditSubjectsHelp}
  sluice audit query [--since T] [--until T] [--tenant ID] [--actor A] [--type TYPE] [--limit N] [--all]
${proofHelp}

verify: checks every signature, proof and leaf of an export bundle, offline. Pin the log's key with
--key (its vkey, from GET /admin/v1/audit/checkpoints, kept out of band): without it only the
bundle's own keys are used, which proves nothing against someone who re-signed it. --anchor: a
signed checkpoint file obtained elsewhere that the bundle must extend. --store: the live store
instead of a bundle, read straight from the database (a PostgreSQL URL, or a PGlite directory no
running gateway holds open), no Sluice server involved. Exit 0 when the bundle verifies, 1 when it
does not (each problem is printed with its index), 2 on bad usage.

export: the entries [from, to) under the latest checkpoint, with their proofs, every checkpoint
and the keys (role auditor, permission audit.read).

${auditSinksHelp}
${auditSubjectsHelpText}
query: matching entries as JSON lines (sluice audit query --help). --bundle also takes a tenant
archive (sluice tenants export): its audit part is verified.
${proofHelpText}

${adminOptionsHelp}`;

export async function runAudit(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'dead-letters' || sub === 'checkpoint') return runAuditSinks(args, `Usage:\n${auditSinksHelp}`);
  if (sub === 'erase' || sub === 'subject-export') return runAuditSubject(sub, rest);
  if (sub === 'query') return runAuditQuery(rest);
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        ...adminOptions,
        bundle: { type: 'string' },
        store: { type: 'string' },
        key: { type: 'string', multiple: true },
        anchor: { type: 'string', multiple: true },
        out: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        seq: { type: 'string' },
        event: { type: 'string' },
        'tree-size': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    console.error(`sluice audit: ${(err as Error).message}\n\n${help}`);
    return 2;
  }
  if (values.help || sub === undefined || sub === '--help' || sub === '-h') {
    console.log(help);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'verify') {
    const keys = values.key as string[] | undefined;
    if ((typeof values.bundle === 'string') === (typeof values.store === 'string')) {
      console.error(`sluice audit verify: one of --bundle FILE or --store URL|DIR is required\n\n${help}`);
      return 2;
    }
    if (typeof values.store === 'string' && !keys?.length) {
      // The database's own checkpoints signed by a key it also names would prove nothing.
      console.error('sluice audit verify: --store needs the log’s key pinned with --key VKEY');
      return 2;
    }
    let bundle: unknown;
    try {
      bundle =
        typeof values.store === 'string'
          ? await bundleFromStore(values.store, keys ?? [])
          : // A tenant archive (sluice tenants export) carries its audit part as a selection bundle.
            auditBundleOf(JSON.parse(readFileSync(values.bundle as string, 'utf8')));
    } catch (err) {
      console.error(`sluice audit verify: ${(err as Error).message}`);
      return typeof values.store === 'string' ? 1 : 2;
    }
    const anchors = (values.anchor as string[] | undefined)?.map((f) => readFileSync(f, 'utf8'));
    const report = verifyBundle(bundle, { trustedKeys: keys, anchors });
    if (values.json) console.log(json(report));
    else {
      const redacted = report.entriesRedacted > 0 ? ` (${report.entriesRedacted} redacted)` : '';
      console.log(
        `${report.ok ? 'ok' : 'FAILED'}: ${report.entriesVerified} entries${redacted} and ${report.checkpointsVerified} checkpoints verified, tree size ${report.treeSize ?? '-'}, keys: ${report.trust === 'pinned' ? 'pinned' : "the bundle's own (pin one with --key)"}`,
      );
      if (report.entriesRedacted > 0)
        console.log(
          `  redacted by retention (content gone, leaf hash proven in place): ${report.redacted.map(([a, b]) => (b - a === 1 ? `${a}` : `${a}..${b - 1}`)).join(', ')}`,
        );
      for (const p of report.problems)
        console.log(`  ${p.kind}${p.index === undefined ? '' : ` at index ${p.index}`}: ${p.detail}`);
    }
    return report.ok ? 0 : 1;
  }
  if (sub === 'proof') return runAuditProof(values);
  if (sub === 'export') {
    if (typeof values.out !== 'string') {
      console.error(`sluice audit export: --out FILE is required\n\n${help}`);
      return 2;
    }
    const q = new URLSearchParams();
    if (typeof values.from === 'string') q.set('from', values.from);
    if (typeof values.to === 'string') q.set('to', values.to);
    try {
      const client = clientFrom(values as { 'admin-url'?: string; 'token-file'?: string });
      const bundle = await client.request<{ entries: unknown[]; checkpoints: string[] }>(
        'GET',
        `/admin/v1/audit/export${q.size > 0 ? `?${q}` : ''}`,
      );
      writeFileSync(values.out, `${JSON.stringify(bundle)}\n`);
      console.log(
        `wrote ${bundle.entries.length} entries and ${bundle.checkpoints.length} checkpoints to ${values.out}`,
      );
      return 0;
    } catch (err) {
      if (err instanceof AdminError) {
        console.error(`sluice audit export: ${err.message}`);
        return 1;
      }
      throw err;
    }
  }
  console.error(`sluice audit: unknown subcommand "${sub}"\n\n${help}`);
  return 2;
}
