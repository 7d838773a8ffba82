/**
 * The one interface every policy implements (see ARCHITECTURE.md). A route's policies run in a
 * fixed order (auth → tenant → ... ), compiled once per config version into `CompiledRoute.policies`;
 * a route without policies has `policies === undefined` and pays one comparison per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorDef } from '../dataplane/errors.js';

/** The tenant a request belongs to, as the route resolved it (from the tenancy snapshot). */
export interface TenantView {
  readonly id: string;
  readonly name: string;
  /** Data-residency tag. */
  readonly region: string | null;
  readonly plan: string | null;
  readonly status: 'active' | 'suspended';
}

/** Who made the request, as far as the route's `auth` established it. */
export type Principal =
  | {
      kind: 'apiKey';
      /** The public key id (the `<id>` of `sk_<id>_<secret>`), safe to log. */
      id: string;
      tenantId: string;
      scopes: readonly string[];
    }
  | {
      kind: 'jwt';
      /** `issuer-name:sub`, safe to log. */
      id: string;
      issuer: string;
      subject: string;
      claims: Readonly<Record<string, unknown>>;
      /** The tenant id from the route's `tenantClaim`, when present. */
      tenantId: string | undefined;
    };

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly route: string;
  /** Normalised path, as matched and (before rewrite) forwarded. */
  readonly path: string;
  /** Host the route matched on (absolute-form authority or Host). */
  readonly host: string | undefined;
  /** Client address (after trusted proxies). */
  readonly client: string;
  /** Extra request headers for the upstream, added by policies (flat [name, value, ...]). */
  readonly upstreamHeaders: string[];
  principal: Principal | undefined;
  tenant: TenantView | undefined;
}

/** A policy's refusal: the error (status and code from the registry), detail and extra headers. */
export interface Denial {
  readonly def: ErrorDef;
  readonly detail?: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Short machine reason for the event (expired, revoked, ...). */
  readonly reason: string;
}

export interface ResponseHead {
  status: number;
  /** Flat [name, value, ...] as sent to the client; policies may change it. */
  headers: string[];
}

export interface Outcome {
  status: number;
  durationMs: number;
  error?: string;
}

export type RequestVerdict = undefined | Denial;

export interface Policy {
  readonly name: string;
  /** Request phase. Return nothing to continue, a Denial to answer at once. Stay synchronous when you can. */
  onRequest?(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict>;
  onResponse?(ctx: RequestContext, head: ResponseHead): void;
  onComplete?(ctx: RequestContext, outcome: Outcome): void;
}
