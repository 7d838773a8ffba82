/**
 * OFREP: on a route with `ofrep: true`, after the same guard, routing, policies (auth, tenant,
 * limits ...) and route admission as any request, Sluice answers from its flag snapshot instead of
 * proxying (delivery/ofrep/protocol.ts). The body is read whole, up to the route's `maxBodyBytes`
 * (at most 1 MiB); the evaluation context takes tenant and principal from what the policies
 * verified.
 */

import {
  evaluateBulk,
  evaluateSingle,
  type OfrepAnswer,
  OfrepContext,
  ofrepTarget,
  type ParsedRequest,
  parseRequest,
} from '../../delivery/ofrep/protocol.js';
import { Errors } from '../../errors/codes.js';
import { newRequestContext } from '../context.js';
import type { Exchange } from '../exchange.js';
import { answer, closeHeaders, refuse } from './reply.js';

/** The most an evaluation context may weigh, whatever the route allows. */
const OFREP_MAX_BODY = 1024 * 1024;

export function answerOfrep(x: Exchange): void {
  const target = ofrepTarget(x.path);
  if (target === undefined || x.req.method !== 'POST') {
    refuse(x, Errors.noRoute, 'OFREP evaluates with POST …/ofrep/v1/evaluate/flags[/{key}]');
    return;
  }
  const max = Math.min(x.routed.maxBodyBytes || OFREP_MAX_BODY, OFREP_MAX_BODY);
  const declared = x.head.contentLength;
  if (declared !== undefined && Number(declared) > max) {
    refuse(x, Errors.bodyTooLarge, `the body exceeds ${max} bytes`, closeHeaders);
    return;
  }
  if (declared === '0' || (declared === undefined && x.head.transferEncoding === undefined)) {
    respond(x, target, Buffer.alloc(0));
    return;
  }
  const { req } = x;
  const res = x.res!;
  const chunks: Buffer[] = [];
  let n = 0;
  x.hold();
  const cleanup = () => {
    req.removeListener('data', onData);
    req.removeListener('end', onEnd);
    req.removeListener('error', onGone);
    res.removeListener('close', onGone);
  };
  const onData = (c: Buffer) => {
    n += c.length;
    if (n > max) {
      cleanup();
      refuse(x, Errors.bodyTooLarge, `the body exceeds ${max} bytes`, closeHeaders);
      return;
    }
    chunks.push(c);
  };
  const onEnd = () => {
    cleanup();
    respond(x, target, Buffer.concat(chunks));
  };
  const onGone = () => {
    cleanup();
    x.finish(499, 0, 'client_closed');
  };
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('error', onGone);
  res.once('close', onGone);
}

const jsonHeaders = ['content-type', 'application/json', 'cache-control', 'no-store'] as const;

function respond(x: Exchange, target: NonNullable<ReturnType<typeof ofrepTarget>>, body: Buffer): void {
  const ep = x.routed.ofrep!;
  x.ctx ??= newRequestContext(x);
  const snap = ep.flags.current;
  const parsed: ParsedRequest = parseRequest(body);
  const context = () =>
    new OfrepContext(
      parsed.ok ? parsed.targetingKey : undefined,
      parsed.ok ? parsed.context : {},
      x.ctx,
      x.req,
      ep.hidden,
    );
  let a: OfrepAnswer;
  if (target.kind === 'single') a = evaluateSingle(snap, target.key, parsed, context);
  else {
    const inm = x.req.headers['if-none-match'];
    a = evaluateBulk(snap, parsed, context, inm);
  }
  const headers: string[] = a.status === 304 ? [] : [...jsonHeaders];
  if (a.etag !== undefined) headers.push('etag', a.etag);
  answer(x, { reply: true, status: a.status, headers, body: a.body, note: `ofrep_${target.kind}` });
}
