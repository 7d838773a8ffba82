// The admin API with the token of this tab: kept in sessionStorage, sent as Authorization: Bearer,
// never put in a URL.
const KEY = 'sluice.console.token';
/** How the token was obtained, for a login through the issuer: { label, expiresAt, user } (oidc.js). */
const META = 'sluice.console.token.meta';

export const token = {
  get: () => sessionStorage.getItem(KEY),
  set: (t, meta) => {
    sessionStorage.setItem(KEY, t);
    if (meta) sessionStorage.setItem(META, JSON.stringify(meta));
    else sessionStorage.removeItem(META);
  },
  meta: () => JSON.parse(sessionStorage.getItem(META) ?? 'null'),
  clear: () => {
    sessionStorage.removeItem(KEY);
    sessionStorage.removeItem(META);
  },
};

/** Called when the server answers 401 (token wrong, revoked, or expired). */
let onUnauthorized = () => {};
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? problem?.title ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function authHeaders() {
  return { authorization: `Bearer ${token.get() ?? ''}` };
}

export async function api(method, path, body) {
  const headers = { ...authHeaders(), accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  if (res.status === 401) onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** The caller's name, roles and permissions; `can(p)` decides which actions the console offers. */
export const session = {
  name: '',
  roles: [],
  via: 'token',
  permissions: new Set(),
  can(p) {
    return this.permissions.has(p);
  },
  async load() {
    const s = await api('GET', '/admin/v1/console/session');
    this.name = s.name;
    this.roles = s.roles;
    this.via = s.via;
    this.permissions = new Set(s.permissions);
    return s;
  },
};
