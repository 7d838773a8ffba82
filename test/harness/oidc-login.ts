/**
 * A real OpenID Connect provider (`oidc-provider`) for the console's browser login: a public client
 * (token_endpoint_auth_method none, PKCE required by the provider for such clients), the provider's
 * own login and consent pages (devInteractions: any login name, any password), a resource indicator
 * so the access token is a JWT for the admin audience, and the account's admin roles in
 * `sluice_roles`. The console's redirect URI is known only once the gateway listens, so
 * `allowConsole(adminUrl)` rebuilds the provider (same keys, same issuer, same port) with the client.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export const CONSOLE_CLIENT_ID = 'sluice-console';
export const ADMIN_RESOURCE = 'https://admin.sluice.test';
/** Login names the provider knows, with their admin roles (anyone else has none). */
export const ACCOUNTS: Record<string, string[]> = {
  'ops-alice': ['operator', 'security'],
  'view-bob': ['viewer'],
};

export interface LoginProvider {
  readonly issuer: string;
  /** Access token lifetime in seconds for the next tokens (default 300). */
  accessTokenTtl: number;
  allowConsole(adminUrl: string): void;
  close(): Promise<void>;
}

export async function startLoginProvider(): Promise<LoginProvider> {
  const rsa = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(rsa.privateKey)), kid: `login-${process.pid}`, alg: 'RS256', use: 'sig' };
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server = createServer((req, res) => handler!(req, res));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const h: LoginProvider = {
    issuer,
    accessTokenTtl: 300,
    allowConsole(adminUrl) {
      handler = build([`${adminUrl}/console/callback`]).callback();
    },
    async close() {
      const closed = once(server, 'close');
      server.close();
      server.closeAllConnections();
      await closed;
    },
  };

  function build(redirectUris: string[]): Provider {
    const provider = new Provider(issuer, {
      clients: redirectUris.length
        ? [
            {
              client_id: CONSOLE_CLIENT_ID,
              token_endpoint_auth_method: 'none',
              grant_types: ['authorization_code'],
              response_types: ['code'],
              redirect_uris: redirectUris,
            },
          ]
        : [],
      jwks: { keys: [jwk] },
      features: {
        devInteractions: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => ADMIN_RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx, resource) => ({
            scope: 'sluice.admin',
            audience: resource,
            accessTokenTTL: h.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      // PKCE for every client, public or not (the default already requires it for public ones).
      pkce: { required: () => true },
      // The console's page calls the token endpoint from its own origin: allow exactly that.
      clientBasedCORS: (_ctx, origin, client) =>
        (client.redirectUris ?? []).some((u: string) => new URL(u).origin === origin),
      findAccount: (_ctx, sub) => ({
        accountId: sub,
        claims: () => ({ sub, preferred_username: sub }),
      }),
      extraTokenClaims: (_ctx, token) => {
        const account = (token as { accountId?: string }).accountId;
        return account === undefined ? undefined : { sluice_roles: ACCOUNTS[account] ?? [] };
      },
    });
    return provider;
  }

  handler = build([]).callback();
  return h;
}
