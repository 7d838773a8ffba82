#!/usr/bin/env node
/** The `sluice` command: one file per subcommand, this one only dispatches. */

const usage = `sluice: an API gateway with progressive delivery built in

Usage:
  sluice start [--config FILE] [--demo]   run the gateway
  sluice validate FILE                    check a config file, print every error
  sluice migrate [--config FILE] [--store URL|DIR]   bring the store's schema up to date
  sluice backup --out FILE [--store URL|DIR]         back the store up (docs/backup.md)
  sluice restore --in FILE [--force] [--store URL|DIR]   restore a backup into a store
  sluice tenants list|get|create|update|suspend|resume|delete   manage tenants (admin API)
  sluice keys list|create|revoke          manage API keys (admin API)
  sluice usage TENANT                     a tenant's quotas and spend (admin API)
  sluice release status|history|start|pause|resume|promote|abort   canary and blue/green releases (admin API)
  sluice flags list|get|set|delete|history   manage feature flags (admin API)
  sluice audit verify|export              verify an audit bundle offline; export one (admin API)
  sluice slo rules [--config FILE]        Prometheus SLO recording and burn-rate alerting rules
  sluice <command> --help                 help for one command

Docs: docs/README.md`;

type Command = (args: string[]) => Promise<number>;

// Loaded on use: the gateway's modules take a second or more to load, and the admin-API commands
// (tenants, keys) need none of them.
const commands: Record<string, () => Promise<Command>> = {
  audit: async () => (await import('./audit.js')).runAudit,
  backup: async () => (await import('./backup.js')).runBackup,
  flags: async () => (await import('./flags.js')).runFlags,
  keys: async () => (await import('./keys.js')).runKeys,
  migrate: async () => (await import('./migrate.js')).runMigrate,
  release: async () => (await import('./release.js')).runRelease,
  restore: async () => (await import('./backup.js')).runRestore,
  slo: async () => (await import('./slo.js')).runSlo,
  start: async () => (await import('./start.js')).runStart,
  tenants: async () => (await import('./tenants.js')).runTenants,
  usage: async () => (await import('./usage.js')).runUsage,
  validate: async () => (await import('./validate.js')).runValidate,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage);
    return cmd === undefined ? 1 : 0;
  }
  const load = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
  if (!load) {
    console.error(`sluice: unknown command "${cmd}"\n\n${usage}`);
    return 2;
  }
  return (await load())(rest);
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
