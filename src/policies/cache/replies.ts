/** Answers from a stored entry: the entry itself, or a 304 when the request's validators match it. */
import type { Reply } from '../policy.js';
import { noneMatchHits, notModifiedSince } from './http.js';
import type { RequestFacts } from './request-facts.js';
import type { Entry } from './store.js';

/** Fields a 304 carries (RFC 9110 §15.4.5); Last-Modified only when there is no ETag. */
const notModifiedFields = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary']);

function notModifiedHead(e: Entry): string[] {
  if (e.notModified !== undefined) return e.notModified;
  const out: string[] = [];
  const h = e.headers;
  for (let i = 0; i < h.length; i += 2) {
    const l = h[i]!.toLowerCase();
    if (notModifiedFields.has(l) || (l === 'last-modified' && e.etag === undefined))
      out.push(h[i]!, h[i + 1]!);
  }
  e.notModified = out;
  return out;
}

const empty = Buffer.alloc(0);

/** A hit: the entry with its Age, or a 304 for a conditional request it satisfies. */
export function replyOf(e: Entry, rf: RequestFacts, age: number): Reply {
  const ageText = String(Math.floor(age));
  if (
    e.status === 200 &&
    (rf.ifNoneMatch !== undefined
      ? noneMatchHits(rf.ifNoneMatch, e.etag)
      : rf.ifModifiedSince !== undefined && notModifiedSince(rf.ifModifiedSince, e.lastModified))
  )
    return {
      reply: true,
      status: 304,
      headers: notModifiedHead(e).concat('age', ageText, 'x-cache', 'HIT'),
      body: empty,
      note: 'cache_hit',
    };
  return {
    reply: true,
    status: e.status,
    headers: e.headers.concat('age', ageText, 'x-cache', 'HIT'),
    body: e.body,
    note: 'cache_hit',
  };
}
