/** Checks of `releases` the schema cannot express: references, one release per route, step order. */
import type { ConfigProblem } from '../../policies/registry.js';
import type { ReleaseConfig } from './schema.js';

interface Declared {
  upstreams: Record<string, unknown>;
  routes: readonly {
    name: string;
    upstream?: string;
    websocket?: boolean;
    cache?: { enabled?: boolean };
    slo?: unknown;
  }[];
  releases?: Record<string, ReleaseConfig>;
}

export function checkReleases(c: Declared): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const byRoute = new Map<string, string>();
  for (const [name, r] of Object.entries(c.releases ?? {})) {
    const at = ['releases', name];
    const route = c.routes.find((x) => x.name === r.route);
    if (route === undefined) {
      out.push({ path: [...at, 'route'], message: `no route named "${r.route}"` });
      continue;
    }
    if (route.upstream === undefined) {
      out.push({
        path: [...at, 'route'],
        message: `route "${r.route}" answers OFREP itself: it has no upstream to release`,
      });
      continue;
    }
    // The cache answers before the version is chosen: a stored answer of one version would be
    // served to users of the other, and the candidate's analysis would miss them.
    if (route.cache !== undefined && route.cache.enabled !== false)
      out.push({
        path: [...at, 'route'],
        message: `route "${r.route}" uses the response cache: a cached answer would cross versions; turn the route's cache off during the release`,
      });
    const other = byRoute.get(r.route);
    if (other !== undefined)
      out.push({
        path: [...at, 'route'],
        message: `route "${r.route}" is already released by "${other}": one release per route`,
      });
    byRoute.set(r.route, name);
    const stable = r.stable ?? route.upstream;
    if (!Object.hasOwn(c.upstreams, stable))
      out.push({ path: [...at, 'stable'], message: `no upstream named "${stable}"` });
    if (!Object.hasOwn(c.upstreams, r.candidate))
      out.push({ path: [...at, 'candidate'], message: `no upstream named "${r.candidate}"` });
    else if (r.candidate === stable)
      out.push({
        path: [...at, 'candidate'],
        message: 'the candidate is the stable upstream: nothing to release',
      });
    const blueGreen = (r.strategy ?? 'canary') === 'blueGreen';
    if (blueGreen && r.steps !== undefined)
      out.push({
        path: [...at, 'steps'],
        message: 'blue/green has no steps: it uses `preview` and `rollbackWindow`',
      });
    if (!blueGreen && (r.preview !== undefined || r.rollbackWindow !== undefined))
      out.push({
        path: [...at, r.preview !== undefined ? 'preview' : 'rollbackWindow'],
        message: 'only a blue/green release (`strategy: blueGreen`) has a preview and a rollback window',
      });
    r.steps?.forEach((s, i) => {
      const prev = r.steps![i - 1];
      if (prev !== undefined && s.weight < prev.weight)
        out.push({
          path: [...at, 'steps', i, 'weight'],
          message: `weights never go down (${prev.weight} then ${s.weight}): a lower weight would move users back`,
        });
    });
    if (r.analysis?.burnRate !== undefined && route.slo === undefined)
      out.push({
        path: [...at, 'analysis', 'burnRate'],
        message: `route "${r.route}" declares no \`slo\`: there is no error budget to burn`,
      });
    if (r.overrides?.header !== undefined && !/^[A-Za-z0-9-]+$/.test(r.overrides.header))
      out.push({ path: [...at, 'overrides', 'header'], message: 'not a header name' });
  }
  return out;
}
