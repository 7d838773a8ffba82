import { Type as T } from '@sinclair/typebox';
import { TOKEN } from '../../config/shared-schema.js';
import { JwtRequirement } from '../../identity/jwt/schema.js';

const Scope = T.String({ minLength: 1, pattern: '^[\\x21\\x23-\\x5B\\x5D-\\x7E]+$' });

export const RouteAuth = T.Object(
  {
    apiKey: T.Optional(
      T.Union(
        [
          T.Boolean(),
          T.Object(
            {
              scopes: T.Optional(
                T.Array(Scope, {
                  description: 'Scopes the key must hold, all of them (403 SLUICE-AUTH-008).',
                }),
              ),
            },
            { additionalProperties: false },
          ),
        ],
        {
          description:
            'Accept API keys (`x-api-key` or `Authorization: Bearer sk_...`; see `identity.apiKeys`). A key identifies its tenant.',
        },
      ),
    ),
    jwt: T.Optional(JwtRequirement),
    optional: T.Optional(
      T.Boolean({
        description:
          'Let requests without any credential through (anonymous); credentials that are present are still checked. Default false: 401 SLUICE-AUTH-001.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Who may use this route: API keys, bearer tokens (JWT) from configured issuers, or either. A request must satisfy one method; which one is decided by the credential it carries.',
  },
);

export const IdentitySettings = T.Object(
  {
    apiKeys: T.Optional(
      T.Object(
        {
          header: T.Optional(
            T.String({
              pattern: TOKEN,
              description:
                'Header that carries an API key; default `x-api-key`. `Authorization: Bearer sk_...` is always read too.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    forward: T.Optional(
      T.Object(
        {
          tenant: T.Optional(
            T.String({
              pattern: TOKEN,
              description: 'Header that tells the upstream the tenant id; default `x-sluice-tenant`.',
            }),
          ),
          principal: T.Optional(
            T.String({
              pattern: TOKEN,
              description:
                'Header that tells the upstream who called (API key id, or `issuer:sub`); default `x-sluice-principal`.',
            }),
          ),
        },
        {
          additionalProperties: false,
          description:
            'Identity headers sent upstream on routes with `auth` or `tenant`. Incoming headers of these names are always removed first, so a client cannot forge them.',
        },
      ),
    ),
    hostTenant: T.Optional(
      T.String({
        pattern: '^[A-Za-z0-9.-]*\\{tenant\\}[A-Za-z0-9.-]*$',
        description:
          'How `tenant.from: [host]` finds a tenant in the Host: a pattern with `{tenant}`, such as `{tenant}.api.example.com`.',
      }),
    ),
  },
  { additionalProperties: false, description: 'How requests are tied to tenants and principals.' },
);
