import { parseArgs } from 'node:util';
import { ConfigInvalidError, formatConfigError, loadConfigFile } from '../config/load.js';
import { renderRules } from '../slo/rules.js';
import { objectivesOf } from '../slo/schema.js';

const help = `Usage: sluice slo rules [--config FILE] [--runbook-base URL] > rules.yaml

Prints the Prometheus recording and alerting rules for the routes' \`slo\` objectives: error
ratios over 5m..3d and the SLO period, the error budget left, the multi-window multi-burn-rate
alerts (page: 14.4x over 1h and 5m, 6x over 6h and 30m; ticket: 3x over 1d and 2h, 1x over 3d
and 6h, for a 30d period), a per-route 5xx-over-5% alert and, with \`redis\`, Redis p95 over 50ms.
FILE defaults to $SLUICE_CONFIG, else ./sluice.yaml. Check the output with
\`promtool check rules\`. See docs/slo.md. Every alert carries a \`runbook_url\` annotation:
--runbook-base URL (default docs/runbooks/) + <AlertName>.md; see docs/runbooks/.`;

export async function runSlo(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'runbook-base': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  if (positionals.length !== 1 || positionals[0] !== 'rules') {
    console.error(help);
    return 2;
  }
  const file = values.config ?? process.env.SLUICE_CONFIG ?? 'sluice.yaml';
  try {
    const { config } = loadConfigFile(file);
    const objectives = objectivesOf(config.routes);
    if (objectives.length === 0) console.error(`sluice slo rules: no route of ${file} declares an \`slo\``);
    if (config.redis === undefined)
      console.error(
        'sluice slo rules: no Redis alert (the config has no `redis`, so Sluice exports no Redis latency)',
      );
    process.stdout.write(
      renderRules(
        { objectives, redis: config.redis !== undefined, runbookBase: values['runbook-base'] },
        file,
      ),
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    for (const e of err.errors) console.error(formatConfigError(e));
    return 1;
  }
}
