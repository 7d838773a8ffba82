/**
 * The request path, composed. Each stage is a file of its own in stages/, and receives the one
 * `Exchange` of the request; a stage either hands the exchange to the next or ends it (a refusal,
 * a reply, the upstream's answer), and every end goes through `Exchange.finish`. Plain requests,
 * HTTP/2 streams and WebSocket upgrades pass the same stages, so a policy that refuses one
 * refuses all. Every stage reads the Runtime captured when the request arrived: a reload never
 * changes the rules under a request in flight.
 *
 *   request:  guard → route → policies → admit (route) → version → select target → request body → admit (target) → dispatch
 *   OFREP:    guard → route → policies → admit (route) → answer from the flag snapshot (an `ofrep` route)
 *   upgrade:  guard → route → upgrade allowed → policies → admit (route) → version → select target → admit (target) → dispatch upgrade
 *
 * The continuations below are module functions, not closures: the synchronous path allocates
 * nothing for them.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ErrorDef } from '../errors/codes.js';
import { Exchange } from './exchange.js';
import { admitRoute, admitTarget } from './stages/admit.js';
import { dispatch } from './stages/dispatch.js';
import { guard } from './stages/guard.js';
import { answerOfrep } from './stages/ofrep.js';
import { applyPolicies } from './stages/policies.js';
import { closingAfterRefusal, refuse } from './stages/reply.js';
import { requestBody } from './stages/request-body.js';
import { route } from './stages/route.js';
import { selectTarget } from './stages/select.js';
import { dispatchUpgrade, upgradeAllowed } from './stages/upgrade.js';
import { chooseVersion } from './stages/version.js';
import type { DataplaneState } from './state.js';

export function handleRequest(gw: DataplaneState, req: IncomingMessage, res: ServerResponse): void {
  // Pipelined behind a refusal that closes the connection: never answered, never routed.
  if (closingAfterRefusal(req)) return;
  const x = new Exchange(gw, req, res);
  if (guard(x) && route(x)) applyPolicies(x, requestAdmission);
}

function requestAdmission(x: Exchange): void {
  admitRoute(x, x.routed.ofrep === undefined ? requestTarget : answerOfrep);
}

function requestTarget(x: Exchange): void {
  chooseVersion(x);
  if (selectTarget(x)) requestBody(x, requestTargetAdmission);
}

function requestTargetAdmission(x: Exchange): void {
  admitTarget(x, dispatch);
}

export function handleUpgrade(gw: DataplaneState, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  // An upgrade pipelined behind a refused request: close once the refusal is out.
  if (closingAfterRefusal(req)) {
    socket.end();
    return;
  }
  socket.on('error', () => socket.destroy());
  const x = new Exchange(gw, req, undefined, socket, head);
  if (guard(x) && route(x) && upgradeAllowed(x)) applyPolicies(x, upgradeAdmission);
}

function upgradeAdmission(x: Exchange): void {
  admitRoute(x, upgradeTarget);
}

function upgradeTarget(x: Exchange): void {
  chooseVersion(x);
  if (selectTarget(x)) admitTarget(x, dispatchUpgrade);
}

/** Refuse a request the listener could not hand to the guard (an oversized HTTP/2 head). */
export function refuseUnread(
  gw: DataplaneState,
  req: IncomingMessage,
  res: ServerResponse,
  def: ErrorDef,
  detail: string,
): void {
  const x = new Exchange(gw, req, res);
  x.requestId = randomUUID();
  refuse(x, def, detail);
}
