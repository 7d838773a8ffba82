/**
 * What the admin-API commands (`sluice tenants`, `sluice keys`) share: the options that say where the
 * admin API is and how to authenticate, an HTTP client that turns problem+json answers into errors,
 * plain-text tables, and the dispatch of subcommands.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9901';

/** parseArgs options every admin command accepts. */
export const adminOptions = {
  'admin-url': { type: 'string' },
  'token-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const adminOptionsHelp = `Options:
  --admin-url URL     the admin listener (default ${DEFAULT_ADMIN_URL}, or SLUICE_ADMIN_URL)
  --token-file FILE   read the bearer token from FILE (default: the SLUICE_ADMIN_TOKEN variable)
  --json              print the API's JSON answer instead of text
  -h, --help          this help`;

/** A refusal from the admin API (a problem+json answer) or a failure to reach it. */
export class AdminError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

/** A usage mistake: printed with the command's help, exit code 2. */
export class UsageError extends Error {}

export class AdminClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
  ) {}

  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    extraHeaders?: Record<string, string>,
  ): Promise<T> {
    const headers: Record<string, string> = {
      ...extraHeaders,
      authorization: `Bearer ${this.token}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new AdminError(
        `cannot reach the admin API at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let p: { code?: string; title?: string; detail?: string } = {};
      try {
        p = JSON.parse(text) as typeof p;
      } catch {}
      const what = [p.code, p.title ?? res.statusText].filter(Boolean).join(' ');
      throw new AdminError(`${res.status} ${what}${p.detail ? `: ${p.detail}` : ''}`, res.status, p.code);
    }
    return (text.length > 0 ? JSON.parse(text) : undefined) as T;
  }
}

/** The client from --admin-url / SLUICE_ADMIN_URL and --token-file / SLUICE_ADMIN_TOKEN. */
export function clientFrom(
  values: { 'admin-url'?: string; 'token-file'?: string },
  env: NodeJS.ProcessEnv = process.env,
): AdminClient {
  const url = values['admin-url'] ?? env.SLUICE_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--admin-url: not a URL: ${url}`);
  }
  let token: string | undefined;
  if (values['token-file'] !== undefined) {
    try {
      token = readFileSync(values['token-file'], 'utf8').trim();
    } catch (err) {
      throw new UsageError(
        `--token-file: cannot read ${values['token-file']}: ${(err as NodeJS.ErrnoException).code}`,
      );
    }
  } else token = env.SLUICE_ADMIN_TOKEN?.trim();
  if (!token) throw new UsageError('no admin token: set SLUICE_ADMIN_TOKEN or pass --token-file FILE');
  return new AdminClient(url, token);
}

/** Rows as a plain-text table with a header line, columns padded to their widest cell. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `name: value` lines, names aligned. */
export function fields(pairs: readonly (readonly [string, string])[]): string {
  const w = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w + 1)} ${v}`).join('\n');
}

export type Subcommand = (
  client: AdminClient,
  positionals: string[],
  values: Record<string, unknown>,
) => Promise<string>;

export interface CommandSpec {
  name: string;
  help: string;
  /** parseArgs options beyond the common ones. */
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>;
  subcommands: Record<string, Subcommand>;
}

/** Parse, dispatch to the subcommand, print its output; exit 0, 1 (API refusal) or 2 (usage). */
export async function runAdminCommand(spec: CommandSpec, args: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: { ...adminOptions, ...spec.options },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    console.error(`sluice ${spec.name}: ${(err as Error).message}\n\n${spec.help}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (values.help || sub === 'help') {
    console.log(spec.help);
    return 0;
  }
  const run = sub === undefined ? undefined : spec.subcommands[sub];
  if (!run) {
    console.error(
      `sluice ${spec.name}: ${sub === undefined ? 'missing' : `unknown`} subcommand${sub ? ` "${sub}"` : ''}\n\n${spec.help}`,
    );
    return 2;
  }
  try {
    const out = await run(
      clientFrom(values as { 'admin-url'?: string; 'token-file'?: string }),
      rest,
      values,
    );
    if (out) console.log(out);
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`sluice ${spec.name} ${sub}: ${err.message}\n\n${spec.help}`);
      return 2;
    }
    if (err instanceof AdminError) {
      console.error(`sluice ${spec.name} ${sub}: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

/** Exactly `n` positional arguments, named for the error message. */
export function expectArgs(positionals: string[], ...names: string[]): string[] {
  if (positionals.length !== names.length)
    throw new UsageError(`expected ${names.map((n) => n.toUpperCase()).join(' ') || 'no arguments'}`);
  return positionals;
}

export const json = (v: unknown): string => JSON.stringify(v, null, 2);
export const orDash = (v: string | null | undefined): string =>
  v === null || v === undefined || v === '' ? '-' : v;
