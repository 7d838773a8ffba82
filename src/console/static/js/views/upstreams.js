// Routes and upstream groups: whether each route has a target to serve it, and every target's
// health, ejection, breaker state and in-flight requests. Both lists are paged and searched on the
// server (/admin/v1/console/routes, …/groups) and their current pages re-read on every tick.
import { badge, fmt, h } from '../dom.js';
import { pagedList } from '../pager.js';
import { onTick, ticks } from '../stream.js';

export const title = 'Upstreams';
const ROUTES_PAGE = 50;
const GROUPS_PAGE = 20;

/** One word for a target's state, with its symbol and tone: what an on-call engineer reads first. */
export function targetState(t) {
  if (t.breaker === 'open') return ['open', 'bad', '⛔', 'breaker open'];
  if (t.ejected) return ['ejected', 'bad', '⏏', 'ejected'];
  if (!t.healthy) return ['down', 'bad', '✗', 'down (health check)'];
  if (!t.available) return ['unavailable', 'bad', '✗', 'unavailable'];
  if (t.breaker === 'half-open') return ['half-open', 'warn', '◐', 'up, breaker half-open'];
  return ['up', 'ok', '✓', 'up'];
}

export function mount(main) {
  const routes = h('tbody');
  const groups = h('div', { id: 'groups' });
  const updated = h('p', { class: 'muted' }, 'Waiting for the first tick…');
  const failed = (what, into) => (err) =>
    into.replaceChildren(h('p', { class: 'error' }, `Could not load ${what}: ${err.message}`));
  const routeList = pagedList({
    id: 'state',
    path: '/admin/v1/console/routes',
    field: 'routes',
    limit: ROUTES_PAGE,
    label: 'Search routes by route or upstream name',
    placeholder: 'Search route or upstream',
    noun: 'routes',
    render: drawRoutes,
    failed: (err) =>
      routes.replaceChildren(
        h('tr', {}, h('td', { colspan: 3, class: 'error' }, `Could not load routes: ${err.message}`)),
      ),
  });
  const groupList = pagedList({
    id: 'group',
    path: '/admin/v1/console/groups',
    field: 'groups',
    limit: GROUPS_PAGE,
    label: 'Search upstream groups by name or target',
    placeholder: 'Search group or target',
    noun: 'groups',
    render: drawGroups,
    failed: failed('upstream groups', groups),
  });
  main.append(
    h('h2', {}, 'Routes'),
    updated,
    routeList.toolbar,
    h(
      'table',
      { id: 'routes-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Route'),
          h('th', { scope: 'col' }, 'Active upstream'),
          h('th', { scope: 'col' }, 'Serving'),
        ),
      ),
      routes,
    ),
    h('h2', {}, 'Upstream groups'),
    groupList.toolbar,
    groups,
  );
  function drawRoutes(rows) {
    routes.replaceChildren(
      ...rows.map((r) =>
        h(
          'tr',
          { 'data-route': r.route },
          h('th', { scope: 'row' }, r.route),
          h('td', {}, r.activeUpstream),
          h('td', {}, r.serving ? badge('ok', '✓', 'serving') : badge('bad', '✗', 'no target available')),
        ),
      ),
    );
  }
  function drawGroups(rows) {
    groups.replaceChildren(
      ...rows.map((g) => {
        const t = g.traffic;
        return h(
          'section',
          { class: 'group', 'data-upstream': g.name, 'aria-labelledby': `g-${g.name}` },
          h(
            'h3',
            { id: `g-${g.name}` },
            g.name,
            ' ',
            h(
              'span',
              { class: 'muted' },
              `${g.available} of ${g.targets.length} available`,
              g.circuitOpen ? ' · every target refused (circuit open)' : '',
            ),
          ),
          h(
            'p',
            { class: 'muted' },
            t
              ? `${fmt.rate(t.rps)} req/s · ${fmt.pct(t.errorRatio)} 5xx · p95 ${fmt.ms(t.p95)}`
              : 'no traffic figures',
            ` · health checks ${g.healthCheck ? 'on' : 'off'} · outlier ejection ${g.outlier ? 'on' : 'off'}`,
          ),
          h(
            'table',
            {},
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...[
                  'Target',
                  'State',
                  'In flight',
                  'Ejections',
                  'Failures in a row',
                  'Breaker',
                  'Last check',
                ].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            h(
              'tbody',
              {},
              g.targets.map((x) => {
                const [state, tone, sym, text] = targetState(x);
                return h(
                  'tr',
                  { 'data-target': x.origin, 'data-state': state },
                  h('th', { scope: 'row' }, x.origin),
                  h(
                    'td',
                    {},
                    badge(tone, sym, text, { 'data-field': 'state' }),
                    x.ejectedForMs
                      ? h('span', { class: 'muted' }, ` for ${Math.ceil(x.ejectedForMs / 1000)} s`)
                      : '',
                  ),
                  h('td', { class: 'num' }, String(x.inflight)),
                  h('td', { class: 'num' }, String(x.ejections)),
                  h('td', { class: 'num' }, String(x.consecutiveFailures)),
                  h('td', {}, x.breaker ?? '–'),
                  h(
                    'td',
                    {},
                    x.lastCheck
                      ? `${x.lastCheck.ok ? '✓' : '✗'} ${fmt.time(x.lastCheck.at)} ${x.lastCheck.detail}`
                      : '–',
                  ),
                );
              }),
            ),
          ),
        );
      }),
    );
  }
  const refresh = () => {
    const last = ticks[ticks.length - 1];
    if (last) updated.textContent = `As of ${fmt.time(last.at)}`;
    void routeList.refresh();
    void groupList.refresh();
  };
  refresh();
  return onTick(refresh);
}
