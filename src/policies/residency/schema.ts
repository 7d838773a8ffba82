import { Type as T } from '@sinclair/typebox';

export const RouteResidency = T.Union(
  [
    T.Boolean(),
    T.Object(
      { enforce: T.Boolean({ description: 'Place requests by the tenant’s region (default true).' }) },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      "Data residency: `true` (or `{ enforce: true }`) makes the route residency-bound. A tenant's request goes only to upstream targets in the tenant's allowed regions (its `region`, widened by a `residency.regions=eu,eu-west` label), through failover, fallback groups, retries, a release's candidate and mirroring; cached answers are filed per region. A request without a tenant is refused (403 SLUICE-RESIDENCY-002), one with no target in its regions too (503 SLUICE-RESIDENCY-001; the static `fallback` does not answer it); each refusal emits `residency_refused`. Needs the tenant resolved (`tenant` or `auth`) and a region on every target of the route's upstreams. See docs/residency.md.",
  },
);

export type RouteResidencyConfig = typeof RouteResidency.static;
