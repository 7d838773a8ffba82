/**
 * GET /admin/v1/console/login-options: what the console's login page needs to offer "Sign in with
 * <issuer>" (public: the page asks before anyone is signed in). It reveals nothing secret: the
 * console is a public client, and issuer, client id, scopes and endpoints are what the issuer's own
 * login page shows. The code exchange itself runs in the browser (src/console/static/js/oidc.js).
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { CALLBACK_PATH, consoleSso, issuerEndpoints } from '../console-sso.js';
import type { AdminContext } from '../context.js';

const Sso = T.Object(
  {
    label: T.String({ description: 'Name for the button: "Sign in with <label>".' }),
    issuer: T.String({ description: 'The issuer identifier (`iss` of its tokens).' }),
    clientId: T.String({ description: "The console's public client id at the issuer." }),
    scopes: T.Array(T.String()),
    resource: T.Optional(
      T.String({ description: 'Resource indicator (RFC 8707) to send, when configured.' }),
    ),
    redirectPath: T.String({ description: 'Path of the redirect URI on this listener.' }),
    authorizationEndpoint: T.Optional(T.String()),
    tokenEndpoint: T.Optional(T.String()),
    unavailable: T.Optional(
      T.String({
        description: 'Why the login through the issuer cannot be offered now (its discovery failed).',
      }),
    ),
  },
  { additionalProperties: false },
);

const LoginOptions = T.Object(
  {
    token: T.Boolean({ description: 'The token login is always offered.' }),
    sso: T.Union([T.Null(), Sso], {
      description: 'The login through the issuer of `admin.auth`; null when not configured.',
    }),
  },
  { additionalProperties: false },
);

export function registerConsoleLoginRoutes(app: FastifyInstance, { gw }: AdminContext): void {
  // Read the issuer's discovery document now, so the first console page does not wait for it.
  const configured = consoleSso(gw);
  if (configured) void issuerEndpoints(configured.issuer);
  app.get(
    '/admin/v1/console/login-options',
    {
      config: { permission: 'public' },
      schema: {
        tags: ['console'],
        summary:
          'Public: whether the console offers the login through the identity provider of `admin.auth`, and where (no secret)',
        response: { 200: LoginOptions },
      },
    },
    async (_req, reply) => {
      reply.header('cache-control', 'no-store');
      const sso = consoleSso(gw);
      if (!sso) return { token: true, sso: null };
      const e = await issuerEndpoints(sso.issuer);
      const where =
        'error' in e
          ? { unavailable: `the identity provider's discovery document could not be read: ${e.error}` }
          : e;
      return { token: true, sso: { ...sso, redirectPath: CALLBACK_PATH, ...where } };
    },
  );
}
