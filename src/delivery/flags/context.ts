/**
 * The evaluation context of a request through the gateway, from what Sluice verified: the tenant
 * the tenant policy resolved, the principal auth established, and request headers minus the ones
 * that carry credentials or identity (a rule must not be able to read, nor a client to spoof, who
 * the caller is through them). The targeting key of a route's request is the principal's id.
 */
import type { Config, RouteConfig } from '../../config/schema.js';
import type { RequestContext } from '../../policies/policy.js';
import type { FlagContext } from './evaluate.js';
import { HIDDEN_HEADERS } from './spec.js';

/**
 * The headers no rule reads on this route: credentials, the configured API-key header, the
 * identity headers Sluice forwards (tenant, principal, JWT claims) and the flags header.
 */
export function hiddenHeaders(r: RouteConfig, config: Config): ReadonlySet<string> {
  const id = config.identity;
  const names = [
    ...HIDDEN_HEADERS,
    id?.apiKeys?.header,
    id?.forward?.tenant,
    id?.forward?.principal,
    ...Object.values(r.auth?.jwt?.forward ?? {}),
    r.flags?.header,
  ];
  return new Set(names.filter((n): n is string => n !== undefined).map((n) => n.toLowerCase()));
}

/** A request header as one string (repeated ones joined by `, `), unless hidden. */
export function readHeader(
  req: RequestContext['req'],
  hidden: ReadonlySet<string>,
  name: string,
): string | undefined {
  if (hidden.has(name)) return undefined;
  const v = req.headers[name];
  return v === undefined ? undefined : typeof v === 'string' ? v : v.join(', ');
}

/** A route's request as flags see it. One small object per evaluated request. */
export class RequestFlagContext implements FlagContext {
  readonly targetingKey: string | undefined;
  readonly tenant: RequestContext['tenant'];
  readonly principal: string | undefined;
  constructor(
    private readonly ctx: RequestContext,
    private readonly hidden: ReadonlySet<string>,
  ) {
    this.tenant = ctx.tenant;
    this.principal = ctx.principal?.id;
    this.targetingKey = this.principal;
  }
  header(name: string): string | undefined {
    return readHeader(this.ctx.req, this.hidden, name);
  }
  attribute(): unknown {
    return undefined;
  }
}
