#!/usr/bin/env node
/** The `sluice` command: one file per subcommand, this one only dispatches. */
import { runMigrate } from './migrate.js';
import { runStart } from './start.js';
import { runValidate } from './validate.js';

const usage = `sluice: an API gateway with progressive delivery built in

Usage:
  sluice start [--config FILE] [--demo]   run the gateway
  sluice validate FILE                    check a config file, print every error
  sluice migrate [--config FILE] [--store URL|DIR]   bring the store's schema up to date
  sluice <command> --help                 help for one command

Docs: docs/README.md`;

const commands: Record<string, (args: string[]) => Promise<number>> = {
  migrate: runMigrate,
  start: runStart,
  validate: runValidate,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage);
    return cmd === undefined ? 1 : 0;
  }
  const run = commands[cmd];
  if (!run) {
    console.error(`sluice: unknown command "${cmd}"\n\n${usage}`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== -1) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exitCode = 1;
  },
);
