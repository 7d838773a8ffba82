import { Type as T } from '@sinclair/typebox';
import { HeaderName } from '../../config/shared-schema.js';

const FlagKey = T.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,127}$', description: 'A flag key.' });

export const RouteFlag = T.Object(
  {
    key: FlagKey,
    equals: T.Optional(
      T.Union([T.Boolean(), T.String(), T.Number()], {
        description: 'The value that enables the route; default `true`.',
      }),
    ),
  },
  {
    additionalProperties: false,
    description:
      'The route exists only for requests the flag enables: evaluated after `auth` and `tenant` (for the verified tenant and principal), any other value, an unknown flag or a failed evaluation answer 404 SLUICE-ROUTE-001, as if there were no route. See docs/flags.md#flag-gated-routes.',
  },
);

export const RouteFlags = T.Object(
  {
    forward: T.Array(FlagKey, {
      minItems: 1,
      uniqueItems: true,
      description: 'Flags evaluated for each request and sent to the upstream.',
    }),
    header: T.Optional({
      ...HeaderName,
      description:
        'The request header that carries them, an RFC 8941 dictionary (`new-checkout=?1, theme="dark"`); default `x-sluice-flags`. Incoming copies are removed.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'Tell the upstream what the gateway decided: the values of these flags for this request, in one header. See docs/flags.md#forwarding.',
  },
);

export type RouteFlagConfig = typeof RouteFlag.static;
export type RouteFlagsConfig = typeof RouteFlags.static;
