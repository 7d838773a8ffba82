import { parseArgs } from 'node:util';
import { ConfigInvalidError, formatConfigError, loadConfigFile } from '../config/load.js';
import { migrate } from '../store/migrate.js';
import { describeStore, openStore, type StoreSetting, storeOptionsFrom } from '../store/open.js';

const help = `Usage: sluice migrate [--config FILE] [--store URL|DIR]

Brings the store's schema to the newest version, then exits. \`sluice start\` does the same on
start; this is for operators who prefer to migrate as a separate step (e.g. before a rollout).
Safe to run while replicas are starting: migrators take turns under a PostgreSQL advisory lock.
  --config FILE   read \`store\` from this config file
  --store VALUE   a postgres:// URL or a PGlite data directory (overrides the config file)
Without either: $DATABASE_URL if set, else the embedded store in ./data/sluice.`;

export async function runMigrate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      store: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  let setting: StoreSetting | undefined = values.store;
  if (setting === undefined && values.config) {
    try {
      setting = loadConfigFile(values.config).config.store;
    } catch (err) {
      if (!(err instanceof ConfigInvalidError)) throw err;
      for (const e of err.errors) console.error(formatConfigError(e));
      return 1;
    }
  }
  const opts = storeOptionsFrom(setting);
  const store = await openStore(opts);
  try {
    const { applied, version } = await migrate(store);
    for (const m of applied) console.log(`applied ${m.version} ${m.name}`);
    console.log(
      `${describeStore(opts)}: schema at version ${version}${applied.length ? '' : ' (nothing to do)'}`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
