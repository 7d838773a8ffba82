/**
 * Admission: concurrency limits per route (before a target is picked) and per target (after).
 * A free slot is taken at once; otherwise the exchange waits in the limiter's bounded FIFO queue
 * (counted in flight, so a drain waits for it), and is refused 503 with retry-after when the
 * queue is full or the wait times out. A client that leaves gives its place up. The slot is the
 * exchange's until `finish`, which gives it back into the limiter it came from: after a reload the
 * old limiter drains while new requests use the new one. Routes and targets without a limit pay
 * one comparison.
 */

import { type ErrorDef, Errors } from '../../errors/codes.js';
import type { Limiter } from '../concurrency.js';
import type { Exchange } from '../exchange.js';
import { refuse, retryAfterOne } from './reply.js';

type Next = (x: Exchange) => void;

/** The route's concurrency limit, then `next`. */
export function admitRoute(x: Exchange, next: Next): void {
  const l = x.routed.limiter;
  if (l === undefined) next(x);
  else if (l.tryAcquire()) {
    x.routeSlot = l;
    next(x);
  } else wait(x, l, 'route', next);
}

/** The picked target's concurrency limit, then `next`. */
export function admitTarget(x: Exchange, next: Next): void {
  const l = x.target!.limiter;
  if (l === undefined) next(x);
  else if (l.tryAcquire()) {
    x.targetSlot = l;
    next(x);
  } else wait(x, l, 'target', next);
}

function wait(x: Exchange, limiter: Limiter, scope: 'route' | 'target', next: Next): void {
  const def: ErrorDef = scope === 'route' ? Errors.routeConcurrency : Errors.targetConcurrency;
  const what = scope === 'route' ? `route "${x.routed.name}"` : `target "${x.target!.id}"`;
  let left = false;
  const closer = x.closer;
  const onClose = () => {
    left = true;
    limiter.leave(waiter!);
    x.finish(499, 0, 'client_closed');
  };
  const waiter = limiter.enqueue(
    () =>
      // Run after the finishing exchange that handed the slot over has completed its own work.
      queueMicrotask(() => {
        closer.removeListener('close', onClose);
        if (left || x.clientGone()) {
          // Gone between the grant and now: pass the slot on.
          limiter.release();
          if (!left) x.finish(499, 0, 'client_closed');
          return;
        }
        if (scope === 'route') x.routeSlot = limiter;
        else x.targetSlot = limiter;
        next(x);
      }),
    () => {
      closer.removeListener('close', onClose);
      refuse(x, def, `${what}: waited ${limiter.queueTimeout} ms in the queue`, retryAfterOne);
    },
  );
  if (waiter === undefined) {
    refuse(x, def, `${what}: the queue is full`, retryAfterOne);
    return;
  }
  x.hold();
  closer.once('close', onClose);
}
