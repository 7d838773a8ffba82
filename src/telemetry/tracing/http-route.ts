import type { RouteConfig } from '../../config/schema.js';

/**
 * A route's path template as `http.route` (semantic conventions: low-cardinality, never the
 * request's own path): an exact path as is, a pattern as written (`/users/:id/*`), a prefix with
 * `/*`, and `/*` for a route without a path condition. Computed once per compiled route.
 */
export function httpRouteOf(path: RouteConfig['match']['path']): string {
  if (path === undefined) return '/*';
  if ('exact' in path) return path.exact;
  if ('prefix' in path) return `${path.prefix.replace(/\/$/, '')}/*`;
  return path.pattern;
}
