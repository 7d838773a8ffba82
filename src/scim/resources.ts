/**
 * SCIM Users and Groups as Sluice keeps and shows them (RFC 7643). What a client sends is checked
 * and normalised here (canonical attribute names, `active` as a boolean even when Entra ID sends
 * the string "False"); readOnly attributes (id, meta, a user's groups) are Sluice's and are dropped
 * from input; a password is never kept.
 */
import { CANONICAL_NAMES, READ_ONLY } from './attributes.js';
import { badRequest } from './errors.js';
import { keyOf } from './filter.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

export type Json = Record<string, unknown>;

/** The attribute's canonical spelling (`username` → `userName`), or the name as given when unknown. */
export function canonical(name: string): string {
  return CANONICAL_NAMES.get(name.toLowerCase()) ?? (/^urn:/i.test(name) ? canonicalUrn(name) : name);
}

function canonicalUrn(urn: string): string {
  return urn.toLowerCase() === ENTERPRISE_SCHEMA.toLowerCase() ? ENTERPRISE_SCHEMA : urn;
}

export interface UserFields {
  userName: string;
  externalId: string | null;
  displayName: string | null;
  active: boolean;
  /** Everything else the client set, with canonical names; no id, meta, groups, schemas, password. */
  resource: Json;
}

export interface GroupFields {
  displayName: string;
  externalId: string | null;
  memberIds: string[];
  resource: Json;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Entra ID sends booleans as "True"/"False" strings. */
export function toBoolean(v: unknown, field: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw badRequest('invalidValue', `${field} must be a boolean`);
}

function optionalText(v: unknown, field: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length > 512) throw badRequest('invalidValue', `${field} must be a string`);
  return v;
}

function requiredText(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > 512)
    throw badRequest('invalidValue', `${field} is required: a non-empty string`);
  return v;
}

/** Input with canonical top-level names and no readOnly attributes. */
function canonicalInput(body: unknown): Json {
  if (!isObject(body)) throw badRequest('invalidSyntax', 'the body must be a JSON object');
  const out: Json = {};
  for (const [k, v] of Object.entries(body)) {
    const c = canonical(k);
    if (READ_ONLY.has(c) || c === 'password') continue;
    out[c] = v;
  }
  return out;
}

export function userFields(body: unknown): UserFields {
  const r = canonicalInput(body);
  const userName = requiredText(r.userName, 'userName');
  const externalId = optionalText(r.externalId, 'externalId');
  const displayName = optionalText(r.displayName, 'displayName');
  const active = r.active === undefined || r.active === null ? true : toBoolean(r.active, 'active');
  r.active = active;
  for (const k of ['userName', 'externalId', 'displayName']) if (r[k] === null) delete r[k];
  return { userName, externalId, displayName, active, resource: r };
}

export function groupFields(body: unknown): GroupFields {
  const r = canonicalInput(body);
  const displayName = requiredText(r.displayName, 'displayName');
  const externalId = optionalText(r.externalId, 'externalId');
  const members = r.members ?? [];
  if (!Array.isArray(members)) throw badRequest('invalidValue', 'members must be a list');
  const memberIds: string[] = [];
  for (const m of members) {
    const value = isObject(m) ? m[keyOf(m, 'value') ?? 'value'] : undefined;
    if (typeof value !== 'string' || value.length === 0)
      throw badRequest('invalidValue', 'each member needs a "value": the id of a user');
    if (!memberIds.includes(value)) memberIds.push(value);
  }
  delete r.members;
  if (r.externalId === null) delete r.externalId;
  return { displayName, externalId, memberIds, resource: r };
}

export interface Meta {
  resourceType: 'User' | 'Group';
  created: Date;
  lastModified: Date;
  version: number;
}

export const etag = (version: number) => `W/"${version}"`;

function metaView(base: string, id: string, m: Meta): Json {
  return {
    resourceType: m.resourceType,
    created: m.created.toISOString(),
    lastModified: m.lastModified.toISOString(),
    location: `${base}/${m.resourceType}s/${id}`,
    version: etag(m.version),
  };
}

export interface UserRecord {
  id: string;
  fields: UserFields;
  meta: Meta;
  groups: { id: string; displayName: string }[];
}

export interface GroupRecord {
  id: string;
  fields: GroupFields;
  meta: Meta;
  members: { id: string; userName: string; displayName: string | null }[];
}

export function userView(base: string, u: UserRecord): Json {
  const extensions = Object.keys(u.fields.resource).filter((k) => /^urn:/i.test(k));
  return {
    schemas: [USER_SCHEMA, ...extensions],
    id: u.id,
    ...u.fields.resource,
    userName: u.fields.userName,
    active: u.fields.active,
    groups: u.groups.map((g) => ({
      value: g.id,
      display: g.displayName,
      $ref: `${base}/Groups/${g.id}`,
      type: 'direct',
    })),
    meta: metaView(base, u.id, u.meta),
  };
}

export function groupView(base: string, g: GroupRecord): Json {
  return {
    schemas: [GROUP_SCHEMA],
    id: g.id,
    ...g.fields.resource,
    displayName: g.fields.displayName,
    members: g.members.map((m) => ({
      value: m.id,
      display: m.displayName ?? m.userName,
      $ref: `${base}/Users/${m.id}`,
      type: 'User',
    })),
    meta: metaView(base, g.id, g.meta),
  };
}

/** `attributes` / `excludedAttributes` (RFC 7644 3.9), on top-level attributes; id and schemas always stay. */
export function project(view: Json, attributes?: string, excluded?: string): Json {
  const names = (s: string) =>
    s
      .split(',')
      .map((a) => a.trim().split('.')[0]?.toLowerCase() ?? '')
      .filter((a) => a.length > 0);
  const always = new Set(['id', 'schemas']);
  if (attributes) {
    const keep = new Set(names(attributes));
    return Object.fromEntries(
      Object.entries(view).filter(([k]) => always.has(k) || keep.has(k.toLowerCase())),
    );
  }
  if (excluded) {
    const drop = new Set(names(excluded));
    return Object.fromEntries(
      Object.entries(view).filter(([k]) => always.has(k) || !drop.has(k.toLowerCase())),
    );
  }
  return view;
}
