/**
 * The one interface every policy implements (see ARCHITECTURE.md). A route's policies run in a
 * fixed order (auth → tenant → ... ), compiled once per config version into `CompiledRoute.policies`;
 * a route without policies has `policies === undefined` and pays one comparison per request.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ErrorDef } from '../errors/codes.js';

/** The tenant a request belongs to, as the route resolved it (from the tenancy snapshot). */
export interface TenantView {
  readonly id: string;
  readonly name: string;
  /** Data-residency tag. */
  readonly region: string | null;
  readonly plan: string | null;
  readonly status: 'active' | 'suspended';
  /** The tenant's labels (per-tenant overrides such as `quota.<name>.daily`); the snapshot's entry carries them. */
  readonly labels?: Readonly<Record<string, string>>;
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
  /** The response; undefined for a WebSocket upgrade, which is answered on its socket. */
  readonly res: ServerResponse | undefined;
  /** A WebSocket upgrade: it passes the same policies, but nothing may answer it from a cache. */
  readonly upgrade: boolean;
  readonly requestId: string;
  readonly route: string;
  /** Normalised path, as matched and (before rewrite) forwarded. */
  readonly path: string;
  /** Host the route matched on (absolute-form authority or Host). */
  readonly host: string | undefined;
  /** Client address: the peer, or from X-Forwarded-For when the peer is a trusted proxy (`listen.trustedProxies`). */
  readonly client: string;
  /** Extra request headers for the upstream, added by policies (flat [name, value, ...]). */
  readonly upstreamHeaders: string[];
  /**
   * Headers added to whatever answers this request: the upstream's response, a policy's refusal,
   * or Sluice's own error (flat [name, value, ...]). CORS and RateLimit headers go here.
   */
  readonly responseHeaders: string[];
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

/** A policy answers the request itself (a cached response, a CORS preflight): no upstream. */
export interface Reply {
  readonly reply: true;
  readonly status: number;
  /** Flat [name, value, ...]; content-length is added from the body. */
  readonly headers: readonly string[];
  readonly body: Buffer;
  /** For the access log, e.g. `cache_hit`, `cors_preflight`. */
  readonly note: string;
}

export interface ResponseHead {
  readonly status: number;
  /** Flat [name, value, ...] as about to be sent to the client; policies may add or change entries. */
  readonly headers: string[];
}

/** What a policy may attach to a response in flight to see its body (a cache filling an entry). */
export interface BodyTap {
  data(chunk: Buffer): void;
  /** The response ended complete. */
  end(): void;
  /** The response failed or was cut: drop what was gathered. */
  abort(): void;
}

export interface Outcome {
  status: number;
  durationMs: number;
  error?: string;
}

export type RequestVerdict = undefined | Denial | Reply;

export interface Policy {
  readonly name: string;
  /** Request phase. Return nothing to continue, a Denial to answer at once. Stay synchronous when you can. */
  onRequest?(ctx: RequestContext): RequestVerdict | Promise<RequestVerdict>;
  /**
   * The upstream's response head (after the route's header rules), before it is sent: edit it, or
   * return a tap to see the body. `ctx.responseHeaders` are appended after every policy's phase.
   */
  onResponse?(ctx: RequestContext, head: ResponseHead): BodyTap | undefined;
  onComplete?(ctx: RequestContext, outcome: Outcome): void;
}

/** Whom a refusal event is about: the request, its client, and its tenant and principal when known. */
export function refusalAbout(ctx: RequestContext): {
  requestId: string;
  client: string;
  tenant?: string;
  principal?: string;
} {
  const about: { requestId: string; client: string; tenant?: string; principal?: string } = {
    requestId: ctx.requestId,
    client: ctx.client,
  };
  if (ctx.tenant !== undefined) about.tenant = ctx.tenant.id;
  if (ctx.principal !== undefined) about.principal = ctx.principal.id;
  return about;
}

/** The route's compiled policy of one class (undefined: the route has none). */
export function policyOf<P extends Policy>(
  policies: readonly Policy[] | undefined,
  // biome-ignore lint/suspicious/noExplicitAny: any constructor of a policy class
  kind: abstract new (...args: any[]) => P,
): P | undefined {
  if (policies === undefined) return undefined;
  for (const p of policies) if (p instanceof kind) return p;
  return undefined;
}
