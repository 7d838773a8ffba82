import { parseArgs } from 'node:util';
import { configVersion } from '../config/compile.js';
import { ConfigInvalidError, formatConfigError, loadConfigFile } from '../config/load.js';

const help = `Usage: sluice validate FILE

Validates FILE against the schema and its cross-references (environment variables are
interpolated from the current environment). Prints every error as
  file:line:column: /config/path: reason
and exits 1 if there is any; prints the config version and exits 0 otherwise.`;

export async function runValidate(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  const file = positionals[0];
  if (!file || positionals.length > 1) {
    console.error(help);
    return 2;
  }
  try {
    const { config } = loadConfigFile(file);
    console.log(
      `${file}: valid (version ${configVersion(config)}, ${config.routes.length} routes, ${Object.keys(config.upstreams).length} upstreams)`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigInvalidError)) throw err;
    for (const e of err.errors) console.error(formatConfigError(e));
    console.error(`${err.errors.length} error${err.errors.length === 1 ? '' : 's'}`);
    return 1;
  }
}
