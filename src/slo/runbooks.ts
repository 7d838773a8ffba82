/**
 * Every alert Sluice ships names its runbook (docs/runbooks/<AlertName>.md) in a `runbook_url`
 * annotation, the one Alertmanager, Grafana and PagerDuty integrations show beside the alert. The
 * base defaults to the path in the repository; `sluice slo rules --runbook-base URL` points it at
 * wherever the operator publishes the docs. test/unit/deploy/runbooks.test.ts checks that each
 * alert's runbook exists and has its four sections.
 */
import type { RuleFile } from './rules.js';

export const DEFAULT_RUNBOOK_BASE = 'docs/runbooks/';

export function runbookUrl(alert: string, base: string = DEFAULT_RUNBOOK_BASE): string {
  return `${base.endsWith('/') ? base : `${base}/`}${alert}.md`;
}

/** The rule file with `runbook_url` on every alerting rule that has none yet. */
export function withRunbooks(file: RuleFile, base?: string): RuleFile {
  for (const g of file.groups)
    for (const r of g.rules)
      if ('alert' in r)
        r.annotations = {
          ...r.annotations,
          runbook_url: r.annotations.runbook_url ?? runbookUrl(r.alert, base),
        };
  return file;
}
