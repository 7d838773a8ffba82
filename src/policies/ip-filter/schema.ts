import { Type as T } from '@sinclair/typebox';

const Cidrs = (description: string) => T.Array(T.String({ minLength: 1 }), { minItems: 1, description });

export const RouteIpFilter = T.Object(
  {
    allow: T.Optional(
      Cidrs(
        'Only these addresses may use the route: IPv4 or IPv6 addresses or CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`). Every other address is refused.',
      ),
    ),
    deny: T.Optional(Cidrs('These addresses are refused, even when `allow` also lists them (deny wins).')),
  },
  {
    additionalProperties: false,
    description:
      'IP allow and deny lists of this route, checked against the client address (the peer, or the `X-Forwarded-For` client behind `listen.trustedProxies`) before anything else; a refusal is 403 SLUICE-IP-001. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) match IPv4 rules. See docs/ip-filter.md.',
  },
);

export type RouteIpFilterConfig = typeof RouteIpFilter.static;
