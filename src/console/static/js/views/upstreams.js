// Routes and upstream groups, live from the stream: whether each route has a target to serve it,
// and every target's health, ejection, breaker state and in-flight requests.
import { badge, fmt, h } from '../dom.js';
import { onTick, ticks } from '../stream.js';

export const title = 'Upstreams';

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
  main.append(
    h('h2', {}, 'Routes'),
    updated,
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
    groups,
  );
  const draw = () => {
    const last = ticks[ticks.length - 1];
    if (!last) return;
    updated.textContent = `As of ${fmt.time(last.at)}`;
    routes.replaceChildren(
      ...last.routeStates.map((r) =>
        h(
          'tr',
          { 'data-route': r.route },
          h('th', { scope: 'row' }, r.route),
          h('td', {}, r.activeUpstream),
          h('td', {}, r.serving ? badge('ok', '✓', 'serving') : badge('bad', '✗', 'no target available')),
        ),
      ),
    );
    const traffic = new Map(last.upstreams.map((u) => [u.upstream, u]));
    groups.replaceChildren(
      ...last.groups.map((g) => {
        const t = traffic.get(g.name);
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
  };
  draw();
  return onTick(draw);
}
