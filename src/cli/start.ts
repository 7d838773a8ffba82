import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ConfigInvalidError, formatConfigError } from '../config/load.js';
import { seedDemoTenant } from '../demo/seed.js';
import { startDemoUpstream } from '../demo/upstream.js';
import { Gateway } from '../server/gateway.js';
import { DEFAULT_ADMIN_URL } from './admin-client.js';

const help = `Usage: sluice start [--config FILE] [--demo]

Runs the gateway.
  --config FILE   the config file (YAML or JSON); default: $SLUICE_CONFIG, else ./sluice.yaml,
                  else (with --demo) the bundled examples/sluice.yaml
  --demo          also start the bundled demo upstream on 127.0.0.1:9000 (DEMO_PORT to change),
                  create tenant "demo" with a new API key, and, unless SLUICE_ADMIN_TOKEN(S) is
                  set, an admin token for this run; both are printed on stderr

Signals: SIGHUP reloads the config; SIGTERM or SIGINT drains and exits 0.`;

export const bundledExample = fileURLToPath(new URL('../../examples/sluice.yaml', import.meta.url));

/** What `--demo` prints about its admin token: the variable the CLI reads, a CLI and a curl line. */
export function demoTokenHelp(token: string, admin: AddressInfo): string {
  const host = admin.address === '0.0.0.0' || admin.address === '::' ? '127.0.0.1' : admin.address;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`;
  const main = process.argv[1] ?? '';
  const rel = relative(process.cwd(), main);
  const cli = main === '' ? 'sluice' : `node ${rel.startsWith('..') ? main : rel}`;
  return [
    'Admin API token for this run (role admin; a new one on every start, demo only):',
    `  export SLUICE_ADMIN_TOKEN=${token}`,
    ...(url === DEFAULT_ADMIN_URL ? [] : [`  export SLUICE_ADMIN_URL=${url}`]),
    `  ${cli} tenants list`,
    `  curl -H "authorization: Bearer $SLUICE_ADMIN_TOKEN" ${url}/admin/v1/tenants`,
    '',
    '',
  ].join('\n');
}

export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      demo: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(help);
    return 0;
  }
  let file = values.config ?? process.env.SLUICE_CONFIG;
  if (!file) {
    const { existsSync } = await import('node:fs');
    file = existsSync('sluice.yaml') ? 'sluice.yaml' : values.demo ? bundledExample : undefined;
  }
  if (!file) {
    console.error('sluice start: no config file (use --config FILE, or --demo for the bundled example)');
    return 2;
  }
  let demo: Awaited<ReturnType<typeof startDemoUpstream>> | undefined;
  let demoToken: string | undefined;
  if (values.demo) {
    const port = Number(process.env.DEMO_PORT ?? 9000);
    demo = await startDemoUpstream('127.0.0.1', port);
    process.env.DEMO_URL ??= `http://127.0.0.1:${demo.address.port}`;
    // Demo only: an admin token for this run, so the admin API and `sluice tenants` work at once.
    // Random on every start (never a fixed one that would open every demo ever run); the gateway
    // reads it from the environment like an operator's. Tokens the operator set are left alone.
    if (!process.env.SLUICE_ADMIN_TOKEN && !process.env.SLUICE_ADMIN_TOKENS) {
      demoToken = randomBytes(32).toString('base64url');
      process.env.SLUICE_ADMIN_TOKEN = demoToken;
    }
  }
  const gw = new Gateway({ configFile: file });
  try {
    await gw.start();
  } catch (err) {
    if (err instanceof ConfigInvalidError) {
      for (const e of err.errors) console.error(formatConfigError(e));
      demo?.server.close();
      return 1;
    }
    throw err;
  }
  if (demo) {
    const a = gw.publicAddress!;
    gw.logger.info(
      { demo: `http://127.0.0.1:${demo.address.port}` },
      `demo upstream running; try: curl http://127.0.0.1:${a.port}/public/hello`,
    );
    const key = await seedDemoTenant(gw);
    // Printed once, on the terminal only (not into the JSON log), like any new key.
    if (key)
      process.stderr.write(
        `\nDemo tenant "demo" has a new API key (shown once):\n  curl -H 'x-api-key: ${key}' http://127.0.0.1:${a.port}/private/hello\n\n`,
      );
    if (demoToken) process.stderr.write(demoTokenHelp(demoToken, gw.adminAddress!));
  }
  process.on('SIGHUP', () => gw.reload('SIGHUP'));
  const shutdown = (signal: string) => {
    gw.logger.info({ signal }, 'shutdown requested');
    void gw.stop().then(() => {
      demo?.server.close();
      // Let pino's async destination flush before exiting.
      setTimeout(() => process.exit(0), 50);
    });
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  return -1; // keep running
}
