/** `routes[].grpc`: count the route's gRPC answers by service and status (./grpc-status.ts). */
import { Type as T } from '@sinclair/typebox';

export const GrpcRouteSchema = T.Object(
  {
    services: T.Array(T.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.]*$' }), {
      minItems: 1,
      maxItems: 100,
      uniqueItems: true,
      description:
        'Fully qualified gRPC services (`pkg.Service`, the first path segment of `/pkg.Service/Method`) counted under their own name in `sluice_grpc_responses_total`; answers for any other service count as `other`, so the label stays bounded.',
    }),
  },
  {
    additionalProperties: false,
    description:
      'The route carries gRPC: its `application/grpc` answers are counted by service and `grpc-status` in `sluice_grpc_responses_total` (the `SluiceGrpcFailureRateHigh` alert reads it). See docs/metrics.md.',
  },
);
