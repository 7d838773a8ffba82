import { Type as T } from '@sinclair/typebox';
import { TOKEN as Token } from '../../config/shared-schema.js';

export const RouteCors = T.Object(
  {
    origins: T.Array(T.String({ minLength: 1 }), {
      minItems: 1,
      description:
        'Origins allowed to read responses: exact (`https://app.example.com`), `*` (any origin, never with `credentials`), or patterns compiled at load: `https://*.example.com` (one or more subdomain labels) and `http://localhost:*` (any port). Scheme and host compare case-insensitively; an origin has no path.',
    }),
    methods: T.Optional(
      T.Array(T.String({ pattern: Token }), {
        minItems: 1,
        description:
          'Methods a preflight may ask for (`Access-Control-Allow-Methods`). Default GET, HEAD, PUT, PATCH, POST, DELETE.',
      }),
    ),
    allowHeaders: T.Optional(
      T.Array(T.String({ pattern: Token }), {
        description:
          'Request headers a preflight may ask for (`Access-Control-Allow-Headers`), compared case-insensitively; a preflight asking for another is refused. Default: reflect the headers the preflight asks for. Browsers ask for `content-type` when it is not a form type (such as `application/json`), and for `authorization`.',
      }),
    ),
    exposeHeaders: T.Optional(
      T.Array(T.String({ pattern: Token }), {
        description:
          'Response headers scripts may read beyond the safelisted ones (`Access-Control-Expose-Headers`), such as `x-request-id`, `retry-after`, `ratelimit`, `ratelimit-policy`. `*` exposes all (not with `credentials`).',
      }),
    ),
    credentials: T.Optional(
      T.Boolean({
        description:
          'Let browsers send cookies and HTTP authentication and read the response (`Access-Control-Allow-Credentials: true`). Not allowed with `origins: ["*"]`. Default false.',
      }),
    ),
    maxAge: T.Optional(
      T.Union([T.Integer({ minimum: 0 }), T.String({ pattern: '^[0-9]+(s|m|h)$' })], {
        description:
          'How long browsers may cache a preflight answer (`Access-Control-Max-Age`): seconds, or `10m`, `2h`. Chromium caps it at 2 h, Firefox at 24 h. Default: not sent (browsers keep it 5 s).',
      }),
    ),
    privateNetwork: T.Optional(
      T.Boolean({
        description:
          'Answer `Access-Control-Allow-Private-Network: true` to preflights that ask for it (a public page calling a gateway on a private network; Chromium). Default false.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'CORS on this route: the gateway answers preflights (204, never reaching the upstream or auth) and adds the allow headers to every answer, refusals included; the upstream’s own `Access-Control-*` headers are replaced. See docs/cors.md.',
  },
);

export type RouteCorsConfig = typeof RouteCors.static;
