/**
 * The console's login through the issuer of `admin.auth` (authorization code with PKCE, run by the
 * browser: src/console/static/js/oidc.js). The admin listener only tells the page where to go: the
 * issuer's authorization and token endpoints, read from its discovery document here, so the page
 * needs no CORS access to the discovery document and the Content-Security-Policy can name the one
 * origin the page may call besides its own (the token endpoint's).
 *
 * Nothing here is secret: the console is a public client (no secret), and what the login page learns
 * (issuer, client id, scopes, endpoints) is what the issuer's own login page shows anyway.
 */
import type { JwtIssuerConfig } from '../identity/jwt/schema.js';
import type { AdminHost } from './host.js';
import { authFromConfig } from './oidc.js';

/** Where the issuer sends the browser back: served by console-static.ts as the console's page. */
export const CALLBACK_PATH = '/console/callback';
const DISCOVERY_TIMEOUT_MS = 5000;
/** A discovery document is re-read after this long; the last good one stays meanwhile. */
const DISCOVERY_TTL_MS = 10 * 60_000;
/** After a failed read, the next request tries again only after this long (an issuer down is not hammered). */
const RETRY_AFTER_MS = 10_000;

export interface ConsoleSso {
  issuer: string;
  label: string;
  clientId: string;
  scopes: string[];
  resource?: string;
}

export interface IssuerEndpoints {
  authorizationEndpoint: string;
  tokenEndpoint: string;
}

/** The console's SSO settings of the running config; undefined without `admin.auth.console`. */
export function consoleSso(gw: AdminHost): ConsoleSso | undefined {
  const settings = authFromConfig(gw);
  const c = settings?.auth.console;
  if (!settings || !c) return undefined;
  const issuers: Readonly<Record<string, JwtIssuerConfig>> = settings.issuers;
  const issuer = Object.hasOwn(issuers, settings.auth.issuer) ? issuers[settings.auth.issuer] : undefined;
  // adminOidc() refuses to start without the issuer, so this is only a guard.
  if (!issuer) return undefined;
  return {
    issuer: issuer.issuer,
    label: c.label ?? new URL(issuer.issuer).host,
    clientId: c.clientId,
    scopes: c.scopes ?? ['openid'],
    ...(c.resource ? { resource: c.resource } : {}),
  };
}

interface Cached {
  endpoints?: IssuerEndpoints;
  /** When the document (or the failure) was read. */
  at: number;
  error?: string;
  pending?: Promise<void>;
}
const cache = new Map<string, Cached>();

function httpUrl(v: unknown): v is string {
  if (typeof v !== 'string') return false;
  const u = URL.parse(v);
  return u !== null && (u.protocol === 'https:' || u.protocol === 'http:');
}

async function read(issuer: string): Promise<IssuerEndpoints> {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const res = await fetch(url, {
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS),
    redirect: 'error',
  });
  if (!res.ok) throw new Error(`the discovery document answered ${res.status}`);
  const doc = (await res.json()) as Record<string, unknown>;
  // RFC 8414 §3.3: the document must be the issuer's own.
  if (doc.issuer !== issuer) throw new Error('the discovery document names another issuer');
  if (!httpUrl(doc.authorization_endpoint) || !httpUrl(doc.token_endpoint))
    throw new Error('the discovery document has no authorization or token endpoint');
  const methods = doc.code_challenge_methods_supported;
  if (Array.isArray(methods) && !methods.includes('S256'))
    throw new Error('the issuer does not support PKCE with S256');
  return { authorizationEndpoint: doc.authorization_endpoint, tokenEndpoint: doc.token_endpoint };
}

/**
 * The issuer's endpoints (cached), or why they are not known. Only the very first read of an issuer
 * is waited for; afterwards a stale copy, or the last failure, is answered at once while the next
 * read runs in the background, so an issuer that stopped answering never makes a console page wait
 * (each retry used to hold one page load for the whole discovery timeout). `now`: the clock (tests
 * move it past the retry interval).
 */
export async function issuerEndpoints(
  issuer: string,
  now = Date.now(),
): Promise<IssuerEndpoints | { error: string }> {
  let c = cache.get(issuer);
  const stale = !c || (c.endpoints ? now - c.at > DISCOVERY_TTL_MS : now - c.at > RETRY_AFTER_MS);
  if (stale && !c?.pending) {
    const entry: Cached = c ?? { at: 0 };
    cache.set(issuer, entry);
    entry.pending = read(issuer).then(
      (endpoints) => {
        entry.endpoints = endpoints;
        entry.error = undefined;
        entry.at = Date.now();
      },
      (err: unknown) => {
        // The last good endpoints stay in use: an issuer that blips does not end console logins.
        entry.error = err instanceof Error ? err.message : String(err);
        entry.at = Date.now();
      },
    );
    entry.pending.finally(() => {
      entry.pending = undefined;
    });
    c = entry;
  }
  // Wait only when nothing is known yet, neither endpoints nor a failure.
  if (c && !c.endpoints && c.error === undefined && c.pending) await c.pending;
  if (c?.endpoints) return c.endpoints;
  return { error: c?.error ?? 'the discovery document was not read' };
}

/**
 * Origins the console page may call besides its own: the token endpoint's, where the browser
 * exchanges the code (for `connect-src`); none when the console login is not configured or the
 * issuer's endpoints are not known.
 */
export async function ssoConnectOrigins(gw: AdminHost): Promise<string[]> {
  const sso = consoleSso(gw);
  if (!sso) return [];
  const e = await issuerEndpoints(sso.issuer);
  return 'tokenEndpoint' in e ? [new URL(e.tokenEndpoint).origin] : [];
}
