// Live traffic: totals, charts of request rate and p95 latency per route → upstream (the busiest,
// from the tick), and every route's figures for the last tick in a table paged and searched on the
// server (/admin/v1/console/routes), its page re-read each tick: 1000 routes are never drawn at once.
import { TimeChart } from '../chart.js';
import { fmt, h } from '../dom.js';
import { pagedList } from '../pager.js';
import { onTick, ticks } from '../stream.js';

export const title = 'Traffic';
const PAGE = 50;
const pair = (r) => `${r.route} → ${r.upstream}`;

function totals(tick) {
  // The server sends the totals over every route (the tick's routes are only the busiest few).
  if (tick.totals) return { rps: tick.totals.rps, err: tick.totals.errorRps, ratio: tick.totals.errorRatio };
  let rps = 0;
  let err = 0;
  let requests = 0;
  let errors = 0;
  for (const r of tick.routes) {
    rps += r.rps;
    err += r.errorRps;
    requests += r.requests;
    errors += r.errorRatio === null ? 0 : r.errorRatio * r.requests;
  }
  return { rps, err, ratio: requests > 0 ? errors / requests : null };
}

function card(id, label) {
  return h(
    'div',
    { class: 'card' },
    h('span', { class: 'label', id: `${id}-label` }, label),
    h('output', { class: 'value', id, 'aria-labelledby': `${id}-label` }, '–'),
  );
}

export function mount(main) {
  const rateBox = h('div', {
    class: 'chart',
    id: 'chart-rate',
    role: 'img',
    'aria-label': 'Requests per second by route and upstream',
  });
  const p95Box = h('div', {
    class: 'chart',
    id: 'chart-p95',
    role: 'img',
    'aria-label': 'p95 latency by route and upstream',
  });
  const body = h('tbody');
  const row = (route, upstream, f) =>
    h(
      'tr',
      { 'data-route': route, 'data-upstream': upstream },
      h('th', { scope: 'row' }, route),
      h('td', {}, upstream),
      h('td', { class: 'num', 'data-field': 'rps' }, fmt.rate(f?.rps)),
      h('td', { class: 'num', 'data-field': 'errorRps' }, fmt.rate(f?.errorRps)),
      h('td', { class: 'num', 'data-field': 'errorRatio' }, fmt.pct(f?.errorRatio)),
      h('td', { class: 'num', 'data-field': 'p50' }, fmt.ms(f?.p50)),
      h('td', { class: 'num', 'data-field': 'p95' }, fmt.ms(f?.p95)),
      h('td', { class: 'num', 'data-field': 'p99' }, fmt.ms(f?.p99)),
    );
  const list = pagedList({
    id: 'route',
    path: '/admin/v1/console/routes',
    field: 'routes',
    limit: PAGE,
    label: 'Search routes by route or upstream name',
    placeholder: 'Search route or upstream',
    noun: 'routes',
    // A route with traffic in the last tick: a row per upstream it went to; without: its active one.
    render: (routes) =>
      body.replaceChildren(
        ...routes.flatMap((r) =>
          r.traffic.length
            ? r.traffic.map((t) => row(r.route, t.upstream, t))
            : [row(r.route, r.activeUpstream, null)],
        ),
      ),
    failed: (err) =>
      body.replaceChildren(
        h('tr', {}, h('td', { colspan: 8, class: 'error' }, `Could not load routes: ${err.message}`)),
      ),
  });
  const updated = h('p', { class: 'muted', id: 'traffic-updated' }, 'Waiting for the first tick…');
  main.append(
    h('h2', {}, 'Live traffic'),
    updated,
    h(
      'div',
      { class: 'cards' },
      card('total-rps', 'Requests per second'),
      card('total-errors', '5xx per second'),
      card('total-error-ratio', 'Error ratio (5xx)'),
      card('inflight', 'In flight now'),
    ),
    h('h3', {}, 'Charts'),
    h('div', { class: 'charts' }, rateBox, p95Box),
    h('h3', {}, 'Per route and upstream (last tick)'),
    list.toolbar,
    h(
      'table',
      { id: 'traffic-table' },
      h(
        'caption',
        { class: 'muted' },
        'Rates over the last tick; latency quantiles interpolated from the request-duration histogram.',
      ),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Route'),
          h('th', { scope: 'col' }, 'Upstream'),
          ...['Req/s', '5xx/s', 'Error %', 'p50', 'p95', 'p99'].map((c) =>
            h('th', { scope: 'col', class: 'num' }, c),
          ),
        ),
      ),
      body,
    ),
  );
  const rate = new TimeChart(rateBox, { title: 'Requests per second', unit: 'req/s' });
  const p95 = new TimeChart(p95Box, { title: 'p95 latency', unit: 'ms' });

  const draw = () => {
    const last = ticks[ticks.length - 1];
    if (!last) return;
    const t = totals(last);
    document.getElementById('total-rps').textContent = fmt.rate(t.rps);
    document.getElementById('total-errors').textContent = fmt.rate(t.err);
    document.getElementById('total-error-ratio').textContent = fmt.pct(t.ratio);
    document.getElementById('inflight').textContent = String(last.inflight);
    updated.textContent = `Last tick ${fmt.time(last.at)} over ${last.intervalMs} ms · config ${last.version}`;
    const points = (pick) =>
      ticks.map((k) => ({
        t: Date.parse(k.at) / 1000,
        values: new Map(k.routes.map((r) => [pair(r), pick(r)])),
      }));
    rate.update(points((r) => r.rps));
    p95.update(points((r) => r.p95));
  };
  draw();
  void list.refresh();
  const off = onTick(() => {
    draw();
    void list.refresh();
  });
  const resize = () => {
    rate.resize();
    p95.resize();
  };
  window.addEventListener('resize', resize);
  return () => {
    off();
    window.removeEventListener('resize', resize);
    rate.destroy();
    p95.destroy();
  };
}
