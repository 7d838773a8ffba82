/**
 * A real OpenID Connect provider (`oidc-provider`) on 127.0.0.1 that issues JWT access tokens through the
 * client_credentials grant with a resource indicator (the resource becomes the `aud`). Keys: one RSA
 * (RS256) and one P-256 (ES256), replaced by `rotateKeys()` (the old ones dropped, same issuer and port).
 * `stop()`/`start()` close and reopen the port to play an unreachable provider. Requests for the key set
 * and the discovery document are counted, with events to wait on.
 *
 * Tokens the provider will not produce (expired, not yet valid, wrong issuer, tampered...) are made with
 * `sign()`, which uses the provider's current private keys.
 */
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import Provider from 'oidc-provider';

export type ProviderAlg = 'RS256' | 'ES256';

export interface IssueOptions {
  /** Space-separated scopes. */
  scope?: string;
  /** Extra claims in the access token. */
  claims?: Record<string, unknown>;
  /** The resource indicator, which becomes `aud`. Default `https://api.sluice.test`. */
  audience?: string;
  alg?: ProviderAlg;
  /** Lifetime in seconds (default 300). */
  ttl?: number;
}

export interface OidcProvider {
  readonly issuer: string;
  readonly port: number;
  readonly jwksUri: string;
  /** Key ids now in the provider's key set. */
  readonly kids: Readonly<Record<ProviderAlg, string>>;
  /** Requests for the key set / discovery document served so far. */
  readonly counts: { jwks: number; discovery: number };
  /** Emits `jwks` and `discovery` per request served. */
  readonly events: EventEmitter;
  /** A JWT access token from the token endpoint (client_credentials + resource indicator). */
  issueToken(opts?: IssueOptions): Promise<string>;
  /** A token signed with the provider's current key for `alg`, any payload and header (for rejection cases). */
  sign(payload: JWTPayload, opts?: { alg?: ProviderAlg; header?: Record<string, unknown> }): Promise<string>;
  /** Fresh RSA and EC keys with new key ids; the old ones are dropped from the key set. */
  rotateKeys(): Promise<void>;
  /** Close the port (connections too): the provider is unreachable. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_AUDIENCE = 'https://api.sluice.test';
/** The provider's one client: the `sub` of its client_credentials tokens. */
export const CLIENT_ID = 'sluice-tests';
const CLIENT_SECRET = 'a-client-secret-that-is-long-enough-for-tests-0123456789';

interface KeyPairs {
  kids: Record<ProviderAlg, string>;
  privateJwks: JWK[];
  signing: Record<ProviderAlg, CryptoKeyLike>;
}
type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

let generation = 0;

async function newKeys(): Promise<KeyPairs> {
  const gen = ++generation;
  const kids = { RS256: `rsa-${gen}-${process.pid}`, ES256: `ec-${gen}-${process.pid}` };
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const ec = await generateKeyPair('ES256', { extractable: true });
  const privateJwks = [
    { ...(await exportJWK(rsa.privateKey)), kid: kids.RS256, alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.privateKey)), kid: kids.ES256, alg: 'ES256', use: 'sig' },
  ];
  return { kids, privateJwks, signing: { RS256: rsa.privateKey, ES256: ec.privateKey } };
}

/** Per-token options travel in a request header the provider's hooks read back. */
const OPTIONS_HEADER = 'x-test-token-options';

interface TokenOptions {
  alg: ProviderAlg;
  ttl: number;
  claims: Record<string, unknown>;
}

function tokenOptions(ctx: { get(name: string): string }): TokenOptions {
  const raw = ctx.get(OPTIONS_HEADER);
  const o = raw ? (JSON.parse(Buffer.from(raw, 'base64url').toString()) as Partial<TokenOptions>) : {};
  return { alg: o.alg ?? 'RS256', ttl: o.ttl ?? 300, claims: o.claims ?? {} };
}

function buildProvider(issuer: string, keys: KeyPairs): Provider {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
      },
    ],
    jwks: { keys: keys.privateJwks },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => DEFAULT_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          const o = tokenOptions(ctx);
          return {
            // Whatever the client asks for: the tests decide what a token holds.
            scope: ctx.oidc.params?.scope ? String(ctx.oidc.params.scope) : 'openid',
            audience: resource,
            accessTokenTTL: o.ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: o.alg } },
          };
        },
      },
    },
    extraTokenClaims: (ctx) => tokenOptions(ctx).claims,
    ttl: { ClientCredentials: (ctx) => tokenOptions(ctx).ttl },
  });
  return provider;
}

export async function startOidcProvider(): Promise<OidcProvider> {
  const events = new EventEmitter();
  const counts = { jwks: 0, discovery: 0 };
  let keys = await newKeys();
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => {
    if (req.url === '/jwks') {
      counts.jwks++;
      events.emit('jwks');
    } else if (req.url === '/.well-known/openid-configuration') {
      counts.discovery++;
      events.emit('discovery');
    }
    handler!(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  let provider = buildProvider(issuer, keys);
  handler = provider.callback();
  let listening = true;

  const h: OidcProvider = {
    issuer,
    port,
    jwksUri: `${issuer}/jwks`,
    get kids() {
      return keys.kids;
    },
    counts,
    events,
    async issueToken(opts = {}) {
      const body = new URLSearchParams({
        grant_type: 'client_credentials',
        resource: opts.audience ?? DEFAULT_AUDIENCE,
      });
      if (opts.scope) body.set('scope', opts.scope);
      const options: TokenOptions = {
        alg: opts.alg ?? 'RS256',
        ttl: opts.ttl ?? 300,
        claims: opts.claims ?? {},
      };
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
          [OPTIONS_HEADER]: Buffer.from(JSON.stringify(options)).toString('base64url'),
        },
        body,
      });
      const json = (await res.json()) as {
        access_token?: string;
        error?: string;
        error_description?: string;
      };
      if (!res.ok || !json.access_token)
        throw new Error(`token endpoint: ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`);
      return json.access_token;
    },
    async sign(payload, opts = {}) {
      const alg = opts.alg ?? 'RS256';
      return new SignJWT(payload)
        .setProtectedHeader({ alg, kid: keys.kids[alg], ...opts.header })
        .sign(keys.signing[alg]);
    },
    async rotateKeys() {
      keys = await newKeys();
      provider = buildProvider(issuer, keys);
      handler = provider.callback();
    },
    async stop() {
      if (!listening) return;
      listening = false;
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
    async start() {
      if (listening) return;
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      listening = true;
    },
    async close() {
      await h.stop();
    },
  };
  return h;
}
