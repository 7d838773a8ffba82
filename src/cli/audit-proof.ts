/**
 * `sluice audit proof --seq N | --event ID [--tree-size N] --key VKEY` and `sluice audit proof --from A
 * --to B --key VKEY`: asks the admin API for an inclusion or consistency proof and checks it here,
 * against the pinned key, before saying yes (proof-check.ts). Exit 0 verified, 1 refused or failing, 2
 * bad usage.
 */
import { checkConsistency, checkInclusion } from '../audit/proof-check.js';
import { AdminError, clientFrom, json } from './admin-client.js';

export const proofHelp = `  sluice audit proof (--seq N | --event ID) [--tree-size N] --key VKEY [admin options]
  sluice audit proof --from A --to B --key VKEY [admin options]`;

export const proofHelpText = `proof: an inclusion proof of one entry (by index or event id) in a checkpoint (default the latest),
or a consistency proof between the checkpoints of sizes A and B, checked against the pinned --key
before it is believed.`;

export async function runAuditProof(values: Record<string, unknown>): Promise<number> {
  const keys = values.key as string[] | undefined;
  const byIndex = typeof values.seq === 'string';
  const byEvent = typeof values.event === 'string';
  const between = typeof values.from === 'string' || typeof values.to === 'string';
  if (
    !keys ||
    keys.length === 0 ||
    [byIndex || byEvent, between].filter(Boolean).length !== 1 ||
    (byIndex && byEvent)
  ) {
    console.error(
      `sluice audit proof: give --key VKEY and one of --seq N, --event ID, or --from A --to B\n\n${proofHelp}`,
    );
    return 2;
  }
  const q = new URLSearchParams();
  let path: string;
  if (between) {
    if (typeof values.from !== 'string' || typeof values.to !== 'string') {
      console.error('sluice audit proof: --from and --to go together');
      return 2;
    }
    q.set('from', values.from);
    q.set('to', values.to);
    path = `/admin/v1/audit/proof/consistency?${q}`;
  } else {
    if (byIndex) q.set('seq', values.seq as string);
    else q.set('eventId', values.event as string);
    if (typeof values['tree-size'] === 'string') q.set('treeSize', values['tree-size']);
    path = `/admin/v1/audit/proof/inclusion?${q}`;
  }
  let answer: Record<string, unknown>;
  try {
    const client = clientFrom(values as { 'admin-url'?: string; 'token-file'?: string });
    answer = await client.request<Record<string, unknown>>('GET', path);
  } catch (err) {
    if (err instanceof AdminError) {
      console.error(`sluice audit proof: ${err.message}`);
      return 1;
    }
    throw err;
  }
  let check: ReturnType<typeof checkInclusion>;
  try {
    check = between ? checkConsistency(answer, keys) : checkInclusion(answer, keys);
  } catch (err) {
    check = { ok: false, detail: (err as Error).message };
  }
  if (values.json) console.log(json({ verified: check.ok, detail: check.detail, answer }));
  else console.log(`${check.ok ? 'verified' : 'FAILED'}: ${check.detail}`);
  return check.ok ? 0 : 1;
}
