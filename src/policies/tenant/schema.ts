import { Type as T } from '@sinclair/typebox';

export const TenantSource = T.Union([T.Literal('apiKey'), T.Literal('jwt'), T.Literal('host')]);

export const RouteTenant = T.Object(
  {
    from: T.Optional(
      T.Array(TenantSource, {
        minItems: 1,
        uniqueItems: true,
        description:
          'Where the tenant comes from, first match wins: `apiKey` (the key belongs to a tenant), `jwt` (the claim named by `auth.jwt.tenantClaim`), `host` (`identity.hostTenant`). Default `[apiKey, jwt]`.',
      }),
    ),
    required: T.Optional(
      T.Boolean({
        description:
          'Refuse requests whose tenant cannot be found (403 SLUICE-TENANT-001); default true. A suspended tenant is always refused (403 SLUICE-TENANT-002).',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'Attribute each request to a tenant; the tenant id is sent upstream (`identity.forward.tenant`).',
  },
);
