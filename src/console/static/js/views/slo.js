// SLOs and anomalies (this replica's view): per route with an `slo`, each objective's SLI and error
// budget left over its period, its burn rate per window; then the open anomalies and the recently
// ended ones. Every figure is written as a number, every state as a word (colour only besides).
import { api } from '../api.js';
import { badge, fmt, h } from '../dom.js';

export const title = 'SLOs';
const POLL_MS = 2000;

const num = (v, digits = 2) => (v === null || v === undefined ? '–' : v.toFixed(digits));

/** The budget's state: a word for each band (and a colour beside it). */
function budgetBadge(b) {
  if (b === null) return badge('muted', '○', 'no traffic', { 'data-state': 'none' });
  if (b <= 0) return badge('bad', '✗', 'exhausted', { 'data-state': 'exhausted' });
  if (b < 0.25) return badge('warn', '!', 'low', { 'data-state': 'low' });
  return badge('ok', '✓', 'healthy', { 'data-state': 'healthy' });
}

function burnBadge(rate) {
  if (rate === null) return '–';
  const text = `${num(rate)}×`;
  if (rate >= 14.4) return badge('bad', '✗', `${text} fast`);
  if (rate > 1) return badge('warn', '!', `${text} burning`);
  return badge('ok', '✓', `${text} ok`);
}

function objectiveRows(route, objectives, windows) {
  return objectives.map((o, i) =>
    h(
      'tr',
      { 'data-route': route, 'data-slo': o.slo },
      i === 0 ? h('th', { scope: 'row', rowspan: objectives.length }, route) : '',
      h('td', {}, o.slo, o.thresholdSeconds === undefined ? '' : ` (≤ ${o.thresholdSeconds * 1000} ms)`),
      h('td', { class: 'num' }, `${(o.target * 100).toFixed(3).replace(/\.?0+$/, '')} % / ${o.periodDays} d`),
      h('td', { class: 'num', 'data-field': 'events' }, `${o.total - o.bad} good of ${o.total}`),
      h('td', { class: 'num', 'data-field': 'sli' }, fmt.pct(o.sli)),
      h(
        'td',
        { 'data-field': 'budget' },
        h(
          'span',
          { class: 'num', 'data-field': 'budget-value' },
          o.budgetRemaining === null ? '–' : fmt.pct(o.budgetRemaining),
        ),
        ' ',
        budgetBadge(o.budgetRemaining),
      ),
      ...windows.map((w) => {
        const b = o.burn.find((x) => x.window === w);
        return h('td', { 'data-window': w }, b ? burnBadge(b.rate) : '–');
      }),
    ),
  );
}

function anomalyRow(a) {
  return h(
    'tr',
    { 'data-route': a.route, 'data-signal': a.signal },
    h('th', { scope: 'row' }, `${a.route} → ${a.upstream}`),
    h('td', {}, a.endedAt ? badge('muted', '■', 'ended') : badge('bad', '⚠', 'open')),
    h('td', {}, a.signal),
    h('td', { class: 'num' }, `${num(a.value, 3)} ${a.unit}`),
    h('td', { class: 'num' }, `${num(a.baseline, 3)} ${a.unit}`),
    h('td', { class: 'num' }, a.threshold === null ? '–' : `${num(a.threshold, 3)} ${a.unit}`),
    h('td', { class: 'num' }, `${num(a.peak, 3)} ${a.unit}`),
    h('td', {}, fmt.when(a.startedAt), a.endedAt ? ` – ${fmt.when(a.endedAt)}` : ''),
    h('td', {}, a.action ?? '–'),
  );
}

export function mount(main) {
  let alive = true;
  let timer;
  const sloBox = h('div', { id: 'slo-box' });
  const anomalyBox = h('div', { id: 'anomaly-box' });
  const stamp = h('p', { class: 'muted', role: 'status' });
  main.append(
    h('h2', {}, 'SLOs and anomalies'),
    h('p', { class: 'muted' }, "This replica's own traffic; the fleet's figures are the Prometheus rules'."),
    stamp,
    h('h3', {}, 'Error budgets'),
    sloBox,
    h('h3', {}, 'Anomalies'),
    anomalyBox,
  );

  async function load() {
    try {
      const [slo, an] = await Promise.all([api('GET', '/admin/v1/slo'), api('GET', '/admin/v1/anomalies')]);
      if (!alive) return;
      stamp.textContent = `As of ${fmt.time(slo.at)}, refreshed every ${POLL_MS / 1000} s.`;
      const windows = [
        ...new Set(slo.routes.flatMap((r) => r.objectives.flatMap((o) => o.burn.map((b) => b.window)))),
      ];
      sloBox.replaceChildren(
        slo.routes.length === 0
          ? h('p', { class: 'muted' }, 'No route has an slo.')
          : h(
              'div',
              { class: 'scroll' },
              h(
                'table',
                { id: 'slo-table' },
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    ...['Route', 'Objective', 'Target', 'Events', 'SLI', 'Budget left'].map((c) =>
                      h('th', { scope: 'col' }, c),
                    ),
                    ...windows.map((w) => h('th', { scope: 'col' }, `Burn ${w}`)),
                  ),
                ),
                h(
                  'tbody',
                  {},
                  slo.routes.map((r) => objectiveRows(r.route, r.objectives, windows)),
                ),
              ),
            ),
      );
      const rows = [...an.open, ...an.recent];
      anomalyBox.replaceChildren(
        !an.enabled
          ? h('p', { class: 'muted' }, 'Anomaly detection is off (no `anomaly` in the config).')
          : rows.length === 0
            ? h('p', { class: 'muted', id: 'anomalies-none' }, 'No open anomaly, none ended recently.')
            : h(
                'table',
                { id: 'anomaly-table' },
                h(
                  'caption',
                  { class: 'muted' },
                  `${an.open.length} open, ${an.recent.length} ended recently`,
                ),
                h(
                  'thead',
                  {},
                  h(
                    'tr',
                    {},
                    ...[
                      'Route → upstream',
                      'State',
                      'Signal',
                      'Value',
                      'Baseline',
                      'Threshold',
                      'Peak',
                      'When',
                      'Action',
                    ].map((c) => h('th', { scope: 'col' }, c)),
                  ),
                ),
                h('tbody', {}, rows.map(anomalyRow)),
              ),
      );
    } catch (err) {
      if (!alive) return;
      sloBox.replaceChildren(
        h('p', { class: 'error', role: 'alert' }, `Could not load the SLOs: ${err.message}`),
      );
    }
    if (alive) timer = setTimeout(load, POLL_MS);
  }

  void load();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
