/** What `sluice slo rules` reads from a config: the objectives, and which metric families it exports. */
import type { Config } from '../config/schema.js';
import type { RulesInput } from './rules.js';
import { objectivesOf } from './schema.js';

export function rulesInputOf(config: Config, runbookBase?: string): RulesInput {
  return {
    objectives: objectivesOf(config.routes),
    redis: config.redis !== undefined,
    // `limits` (tenant plans) rate-limits routes with a tenant even without their own `rateLimit`.
    rateLimits: config.limits !== undefined || config.routes.some((r) => r.rateLimit !== undefined),
    grpc: config.routes.some((r) => r.grpc !== undefined),
    ...(runbookBase === undefined ? {} : { runbookBase }),
  };
}
