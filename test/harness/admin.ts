/**
 * The admin API as its clients use it: a gateway with an embedded store and one bootstrap token per
 * role, and plain HTTP calls to its admin listener.
 */
import { ROLES, type Role } from '../../src/admin/roles.js';
import { startGateway, type TestGateway } from './gateway.js';
import { startUpstream, type TestUpstream } from './upstream.js';

/** One bootstrap token per role (SLUICE_ADMIN_TOKENS), named after the role. */
export const ROLE_TOKENS: Readonly<Record<Role, string>> = Object.fromEntries(
  ROLES.map((r) => [r, `${r}-token-0123456789abcdef`]),
) as Record<Role, string>;

export function roleTokensEnv(): string {
  return ROLES.map((r) => `${r}-user:${r}:${ROLE_TOKENS[r]}`).join(',');
}

export interface AdminGateway {
  g: TestGateway;
  up: TestUpstream;
  /** Call the admin listener with the token of a role (or a raw token, or none). */
  call: (method: string, path: string, opts?: CallOptions) => Promise<AdminResponse>;
  stop: () => Promise<void>;
}

export interface CallOptions {
  role?: Role;
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface AdminResponse {
  status: number;
  headers: Headers;
  contentType: string;
  /** Parsed JSON when the body is JSON, else the text (undefined when empty). */
  body: unknown;
  text: string;
}

export async function adminCall(
  adminUrl: string,
  method: string,
  path: string,
  opts: CallOptions = {},
): Promise<AdminResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token ?? (opts.role ? ROLE_TOKENS[opts.role] : undefined);
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(`${adminUrl}${path}`, { method, headers, body });
  const text = await res.text();
  const contentType = res.headers.get('content-type') ?? '';
  let parsed: unknown = text.length > 0 ? text : undefined;
  if (text.length > 0 && /json/.test(contentType)) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, contentType, body: parsed, text };
}

/**
 * A gateway with an in-memory embedded store (unless `store: false`), one route to a real upstream
 * (API-key auth on `/keyed`), and the role tokens in SLUICE_ADMIN_TOKENS.
 */
export async function startAdminGateway(
  opts: { store?: string | false; env?: NodeJS.ProcessEnv; config?: Record<string, unknown> } = {},
): Promise<AdminGateway> {
  const up = await startUpstream();
  const store = opts.store ?? 'memory://';
  const g = await startGateway(
    {
      listen: { host: '127.0.0.1', port: 0 },
      admin: { host: '127.0.0.1', port: 0 },
      ...(store === false ? {} : { store }),
      upstreams: { up: { targets: [{ url: up.url }] } },
      routes: [
        { name: 'open', match: { path: { prefix: '/open' } }, upstream: 'up' },
        ...(store === false
          ? []
          : [
              {
                name: 'keyed',
                match: { path: { prefix: '/keyed' } },
                upstream: 'up',
                auth: { apiKey: true },
              },
            ]),
      ],
      ...opts.config,
    },
    { env: { SLUICE_ADMIN_TOKENS: roleTokensEnv(), SLUICE_ADMIN_TOKEN: '', ...opts.env } },
  );
  return {
    g,
    up,
    call: (method, path, o) => adminCall(g.adminUrl, method, path, o),
    stop: async () => {
      await g.stop();
      await up.close();
    },
  };
}
