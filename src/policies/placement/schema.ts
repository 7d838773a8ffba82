import { Type as T } from '@sinclair/typebox';
import { PlacementKey } from '../../upstreams/schema.js';

export const RoutePlacement = T.Union(
  [
    PlacementKey,
    T.Object(
      {
        by: T.Array(PlacementKey, {
          minItems: 1,
          uniqueItems: true,
          description: 'The placement keys, in order (`[shard]`, `[cell, shard]`).',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      "Tenant placement: `shard` (or `{ by: [shard, ...] }`) places each request by its tenant's `placement.shard` label: it goes only to upstream targets whose `labels.shard` is the tenant's, through failover, fallback groups, retries, a release's candidate and mirroring; cached answers are filed per placement. With `residency` the region is a key too (region first). A request without a tenant is refused (403 SLUICE-PLACEMENT-002), one whose tenant lacks the label or has no target in its placement too (503 SLUICE-PLACEMENT-001; the static `fallback` does not answer it); each refusal emits `placement_refused`. Needs the tenant resolved (`tenant` or `auth`) and the label on every target of the route's upstreams. See docs/placement.md.",
  },
);

export type RoutePlacementConfig = typeof RoutePlacement.static;
