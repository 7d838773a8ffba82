/**
 * The one interface every policy implements (see ARCHITECTURE.md). A route's policies run in a
 * fixed order, compiled once per config version. The core (issue 3) ships no policies yet; auth,
 * tenancy, limits and caching arrive as folders beside this file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Problem } from '../dataplane/problem.js';

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** Normalised path, as matched and (before rewrite) forwarded. */
  readonly path: string;
  readonly params: Record<string, string> | undefined;
  /** Extra request headers for the upstream, added by policies (flat [name, value, ...]). */
  readonly upstreamHeaders: string[];
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

export interface Policy {
  readonly name: string;
  onRequest?(ctx: RequestContext): undefined | Problem | Promise<undefined | Problem>;
  onResponse?(ctx: RequestContext, head: ResponseHead): void;
  onComplete?(ctx: RequestContext, outcome: Outcome): void;
}
