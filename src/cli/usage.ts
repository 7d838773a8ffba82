/** `sluice usage TENANT`: a tenant's quotas (UTC day and month) and spend per provider, through the admin API. */
import { parseArgs } from 'node:util';
import {
  AdminError,
  adminOptions,
  adminOptionsHelp,
  clientFrom,
  json,
  table,
  UsageError,
} from './admin-client.js';

const help = `Usage: sluice usage TENANT [options]

Shows the tenant's usage of each quota this UTC day and month (used / limit, when it resets) and
its spend per provider this UTC month against its budget.

${adminOptionsHelp}

Role needed: viewer (permission usage.read).`;

interface PeriodUsage {
  period: string;
  used: number;
  limit: number | null;
  remaining: number | null;
  resetsAt: string;
}

interface UsageView {
  tenant: string;
  plan: string | null;
  at: string;
  source: string;
  quotas: { name: string; counts: string; day: PeriodUsage; month: PeriodUsage }[];
  budgets: {
    provider: string;
    period: string;
    currency: string;
    spent: number;
    budget: number | null;
    action: string;
    exceeded: boolean;
  }[];
}

const ofLimit = (u: PeriodUsage) => `${u.used} / ${u.limit ?? 'unlimited'}`;

export function render(u: UsageView): string {
  const out = [`tenant ${u.tenant} (plan ${u.plan ?? '-'}), ${u.at}, counters: ${u.source}`];
  if (u.quotas.length > 0) {
    out.push(
      '',
      table(
        ['QUOTA', 'COUNTS', `DAY ${u.quotas[0]!.day.period}`, `MONTH ${u.quotas[0]!.month.period}`],
        u.quotas.map((q) => [q.name, q.counts, ofLimit(q.day), ofLimit(q.month)]),
      ),
    );
  }
  if (u.budgets.length > 0) {
    out.push(
      '',
      table(
        ['PROVIDER', `SPENT ${u.budgets[0]!.period}`, 'BUDGET', 'ACTION', 'STATE'],
        u.budgets.map((b) => [
          b.provider,
          `${b.spent.toFixed(2)} ${b.currency}`,
          b.budget === null ? 'none' : `${b.budget.toFixed(2)} ${b.currency}`,
          b.action,
          b.exceeded ? 'EXCEEDED' : 'ok',
        ]),
      ),
    );
  }
  if (u.quotas.length === 0 && u.budgets.length === 0) out.push('no quotas or budgets configured');
  return out.join('\n');
}

export async function runUsage(args: string[]): Promise<number> {
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: adminOptions,
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    console.error(`sluice usage: ${(err as Error).message}\n\n${help}`);
    return 2;
  }
  if (values.help) {
    console.log(help);
    return 0;
  }
  try {
    if (positionals.length !== 1) throw new UsageError('expected TENANT');
    const client = clientFrom(values as { 'admin-url'?: string; 'token-file'?: string });
    const u = await client.request<UsageView>(
      'GET',
      `/admin/v1/tenants/${encodeURIComponent(positionals[0]!)}/usage`,
    );
    console.log(values.json ? json(u) : render(u));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`sluice usage: ${err.message}\n\n${help}`);
      return 2;
    }
    if (err instanceof AdminError) {
      console.error(`sluice usage: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
