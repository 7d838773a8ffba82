/**
 * Feature flags, on the flag repository. Every change goes through the repository with the acting
 * principal and role (it records who, before and after in admin_changes in the same transaction)
 * and is announced on the event bus; every replica's flag snapshot reloads on the store's
 * notification. `If-Match: "<revision>"` makes a change conditional (409 when another came first).
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { FlagKey, FlagSpec, type FlagSpecT } from '../../delivery/flags/spec.js';
import { FlagError, type FlagRepository, type StoredFlag } from '../../delivery/flags/store.js';
import { Errors } from '../../errors/codes.js';
import { type AdminContext, sendProblem } from '../context.js';
import { Change, Empty, problemResponse, searchedPageQuery, withAuthErrors } from '../schemas.js';
import { changeView } from './changes.js';

const noStore = problemResponse('No store is configured (SLUICE-ADMIN-004).');
const notFound = problemResponse('No such flag (SLUICE-ADMIN-006).');
const invalid = problemResponse(
  'The request does not match the schema, or the flag is inconsistent (SLUICE-ADMIN-005).',
);
const conflict = problemResponse('If-Match names another revision than the current one (SLUICE-ADMIN-007).');

const FlagParams = T.Object({ key: FlagKey }, { additionalProperties: false });
type FlagParamsT = typeof FlagParams.static;

const FlagView = T.Object(
  {
    key: FlagKey,
    revision: T.Integer({ description: 'Grows by one with every change; `If-Match` takes it.' }),
    bucketing: T.String({ description: 'The bucketing version the flag keeps (docs/bucketing.md).' }),
    spec: FlagSpec,
    createdAt: T.String({ format: 'date-time' }),
    updatedAt: T.String({ format: 'date-time' }),
    updatedBy: T.String(),
  },
  { additionalProperties: false },
);

const IfMatch = T.Object(
  {
    'if-match': T.Optional(
      T.String({ description: 'The revision the change applies to, `"3"` (0: create only).' }),
    ),
    'x-sluice-reason': T.Optional(
      T.String({
        maxLength: 1500,
        description:
          'Why (percent-encoded UTF-8, at most 500 characters decoded): kept with the change in its history.',
      }),
    ),
  },
  { additionalProperties: true },
);
type IfMatchT = typeof IfMatch.static;

const ListQuery = searchedPageQuery(
  'Only flags whose key or description contains this (any case).',
  500,
  'A page of this many (without it: every flag).',
);
type ListQueryT = typeof ListQuery.static;

/** The reason header, decoded; undefined when absent or blank. */
function reasonOf(h: string | undefined): string | undefined {
  if (h === undefined) return undefined;
  let r: string;
  try {
    r = decodeURIComponent(h);
  } catch {
    r = h;
  }
  r = r.trim();
  return r ? r.slice(0, 500) : undefined;
}

const HistoryQuery = T.Object(
  { limit: T.Optional(T.Integer({ minimum: 1, maximum: 500, description: 'Default 50.' })) },
  { additionalProperties: false },
);

export function flagView(f: StoredFlag) {
  return {
    key: f.key,
    revision: f.revision,
    bucketing: f.spec.bucketing,
    spec: f.spec,
    createdAt: f.createdAt.toISOString(),
    updatedAt: f.updatedAt.toISOString(),
    updatedBy: f.updatedBy,
  };
}

/** `"3"`, `W/"3"` or `3` → 3; undefined when absent; NaN when not a revision. */
function revisionOf(h: string | undefined): number | undefined {
  if (h === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(h);
  return m ? Number(m[1]) : Number.NaN;
}

export function registerFlagRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const withRepo = async <R>(reply: FastifyReply, fn: (r: FlagRepository) => Promise<R>) => {
    const r = ctx.gw.flags;
    if (!r) return sendProblem(reply, Errors.adminNoStore);
    try {
      return await fn(r);
    } catch (err) {
      if (!(err instanceof FlagError)) throw err;
      if (err.code === 'not-found') return sendProblem(reply, Errors.adminResourceNotFound, err.message);
      if (err.code === 'conflict') return sendProblem(reply, Errors.adminConflict, err.message);
      return sendProblem(reply, Errors.adminInvalidRequest, err.message, {
        errors: err.problems.map((p) => ({ in: 'body', path: p.path, message: p.message })),
      });
    }
  };
  const badRevision = (reply: FastifyReply) =>
    sendProblem(reply, Errors.adminInvalidRequest, 'If-Match: expected a revision such as "3"');

  app.get<{ Querystring: ListQueryT }>(
    '/admin/v1/flags',
    {
      config: { permission: 'flags.read' },
      schema: {
        tags: ['flags'],
        summary:
          'Feature flags in key order: all of them, or a page (`limit`, `offset`) of those matching `q`',
        querystring: ListQuery,
        response: withAuthErrors({
          200: T.Object({
            flags: T.Array(FlagView),
            total: T.Integer({ description: 'How many flags match `q` in all.' }),
          }),
          400: invalid,
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const { q, limit, offset } = req.query;
        if (q === undefined && limit === undefined && offset === undefined) {
          const flags = (await r.list()).map(flagView);
          return { flags, total: flags.length };
        }
        const page = await r.page(q ?? '', limit ?? 500, offset ?? 0);
        return { flags: page.flags.map(flagView), total: page.total };
      }),
  );

  app.get<{ Params: FlagParamsT }>(
    '/admin/v1/flags/:key',
    {
      config: { permission: 'flags.read' },
      schema: {
        tags: ['flags'],
        summary: 'One flag (ETag: its revision)',
        params: FlagParams,
        response: withAuthErrors({ 200: FlagView, 400: invalid, 404: notFound, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const f = await r.get(req.params.key);
        if (!f) return sendProblem(reply, Errors.adminResourceNotFound, `no flag ${req.params.key}`);
        reply.header('etag', `"${f.revision}"`);
        return flagView(f);
      }),
  );

  app.put<{ Params: FlagParamsT; Body: FlagSpecT; Headers: IfMatchT }>(
    '/admin/v1/flags/:key',
    {
      config: { permission: 'flags.write' },
      schema: {
        tags: ['flags'],
        summary:
          'Create a flag or replace its definition (201 created, 200 replaced); every replica applies it within a second',
        params: FlagParams,
        headers: IfMatch,
        body: FlagSpec,
        response: withAuthErrors({
          200: FlagView,
          201: FlagView,
          400: invalid,
          409: conflict,
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const expected = revisionOf(req.headers['if-match']);
        if (Number.isNaN(expected)) return badRevision(reply);
        const who = ctx.actor(req);
        const before = await r.get(req.params.key);
        const reason = reasonOf(req.headers['x-sluice-reason']);
        const { flag, created } = await r.set(who, req.params.key, req.body, expected, reason);
        ctx.changed(
          who,
          created ? 'flag.create' : 'flag.update',
          `flag:${flag.key}`,
          before && flagView(before),
          reason ? { ...flagView(flag), reason } : flagView(flag),
        );
        reply.code(created ? 201 : 200).header('etag', `"${flag.revision}"`);
        if (created) reply.header('location', `/admin/v1/flags/${flag.key}`);
        return flagView(flag);
      }),
  );

  app.delete<{ Params: FlagParamsT; Headers: IfMatchT }>(
    '/admin/v1/flags/:key',
    {
      config: { permission: 'flags.write' },
      schema: {
        tags: ['flags'],
        summary: 'Delete a flag (its history stays); routes it enables answer 404 from then on',
        params: FlagParams,
        headers: IfMatch,
        response: withAuthErrors({ 204: Empty, 400: invalid, 404: notFound, 409: conflict, 503: noStore }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const expected = revisionOf(req.headers['if-match']);
        if (Number.isNaN(expected)) return badRevision(reply);
        const who = ctx.actor(req);
        const before = await r.delete(who, req.params.key, expected);
        ctx.changed(who, 'flag.delete', `flag:${before.key}`, flagView(before), null);
        return reply.code(204).send();
      }),
  );

  app.get<{ Params: FlagParamsT; Querystring: typeof HistoryQuery.static }>(
    '/admin/v1/flags/:key/history',
    {
      config: { permission: 'flags.read' },
      schema: {
        tags: ['flags'],
        summary: "A flag's changes, newest first: who, when, the definition before and after",
        params: FlagParams,
        querystring: HistoryQuery,
        response: withAuthErrors({
          200: T.Object({ changes: T.Array(Change) }, { additionalProperties: false }),
          400: invalid,
          503: noStore,
        }),
      },
    },
    async (req, reply) =>
      withRepo(reply, async (r) => {
        const rows = await r.history(req.params.key, req.query.limit ?? 50);
        return {
          changes: rows.map(changeView),
        };
      }),
  );
}
