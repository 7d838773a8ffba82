// A tenant's usage against its plan's limits in the tenants view: per quota the UTC day and month
// (used of limit, as numbers, a percentage and a bar), per provider this month's spend against its
// budget. Everything is written in words and numbers ("812 of 1,000 (81%)"); the bar and its colour
// only repeat it. Refreshed every few seconds while the section is on the page.
import { api } from '../api.js';
import { badge, fmt, h } from '../dom.js';

const POLL_MS = 3000;
const num = new Intl.NumberFormat();

/** `used of limit (p%)`; the percentage rounds down, so 100% means the limit is reached. */
export function ofLimit(used, limit, format = (v) => num.format(v)) {
  if (limit === null) return `${format(used)} (no limit)`;
  const pct = limit > 0 ? Math.floor((used / limit) * 100) : used > 0 ? 100 : 0;
  return `${format(used)} of ${format(limit)} (${pct}%)`;
}

function level(used, limit) {
  if (limit === null) return badge('muted', '∞', 'no limit');
  if (used >= limit) return badge('bad', '✗', 'limit reached');
  if (used >= limit * 0.8) return badge('warn', '⚠', 'near the limit');
  return badge('ok', '✓', 'within the limit');
}

/** A bar (a native meter: its value is read out by screen readers) beside the figures in words. */
function gauge(used, limit, label, text) {
  return h(
    'div',
    { class: 'gauge' },
    limit === null
      ? ''
      : h('meter', {
          min: 0,
          max: Math.max(limit, 1),
          low: limit * 0.8,
          high: limit * 0.8,
          optimum: 0,
          value: Math.min(used, Math.max(limit, 1)),
          'aria-label': `${label}: ${text}`,
        }),
    h('span', { 'data-field': 'figures' }, text),
  );
}

function periodCell(q, p, which) {
  const text = ofLimit(p.used, p.limit);
  return h(
    'td',
    { 'data-quota': q.name, 'data-period': which, 'data-used': p.used, 'data-limit': p.limit ?? '' },
    gauge(p.used, p.limit, `${q.name} ${which === 'day' ? 'today' : 'this month'}`, text),
    h('div', {}, level(p.used, p.limit), h('span', { class: 'muted' }, ` resets ${fmt.when(p.resetsAt)}`)),
  );
}

function quotasTable(u) {
  return h(
    'table',
    { class: 'usage' },
    h('caption', { class: 'muted' }, `Quotas of ${u.tenant} (plan ${u.plan ?? 'default'}, UTC periods)`),
    h(
      'thead',
      {},
      h('tr', {}, ...['Quota', 'Counts', 'Today', 'This month'].map((c) => h('th', { scope: 'col' }, c))),
    ),
    h(
      'tbody',
      {},
      u.quotas.map((q) =>
        h(
          'tr',
          { 'data-quota-row': q.name },
          h('th', { scope: 'row' }, q.name),
          h('td', {}, q.counts),
          periodCell(q, q.day, 'day'),
          periodCell(q, q.month, 'month'),
        ),
      ),
    ),
  );
}

function budgetsTable(u) {
  return h(
    'table',
    { class: 'usage' },
    h('caption', { class: 'muted' }, `Cost budgets of ${u.tenant} (UTC month)`),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ...['Provider', 'Spent this month', 'When exceeded', 'State'].map((c) =>
          h('th', { scope: 'col' }, c),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      u.budgets.map((b) => {
        const money = new Intl.NumberFormat(undefined, {
          style: 'currency',
          currency: b.currency,
          maximumFractionDigits: 6,
        });
        const text = ofLimit(b.spent, b.budget, (v) => money.format(v));
        return h(
          'tr',
          { 'data-budget': b.provider, 'data-spent': b.spent },
          h('th', { scope: 'row' }, b.provider),
          h('td', {}, gauge(b.spent, b.budget, `${b.provider} spend`, text)),
          h('td', {}, b.action === 'block' ? 'requests refused' : 'alert only'),
          h(
            'td',
            {},
            b.budget === null
              ? badge('muted', '∞', 'no budget')
              : b.exceeded
                ? badge('bad', '✗', 'over budget')
                : level(b.spent, b.budget),
            h('span', { class: 'muted' }, ` resets ${fmt.when(b.resetsAt)}`),
          ),
        );
      }),
    ),
  );
}

/** The usage section of one tenant's details. */
export function usageSection(t) {
  const body = h('div', {}, 'Loading usage…');
  const stamp = h('p', { class: 'muted', 'data-field': 'usage-at' });
  const section = h(
    'section',
    { class: 'tenant-usage', 'data-usage-of': t.id, 'aria-label': `Usage of ${t.id}` },
    h('h4', {}, `Usage of ${t.id} against its limits`),
    stamp,
    body,
  );
  let sig = '';
  const load = async () => {
    try {
      const u = await api('GET', `/admin/v1/tenants/${encodeURIComponent(t.id)}/usage`);
      const now = JSON.stringify([u.quotas, u.budgets]);
      stamp.textContent = `Read ${fmt.time(u.at)} from ${u.source === 'redis' ? 'the counters every replica shares (Redis)' : u.source === 'memory' ? "this replica's counters" : 'the store'}.`;
      // Redraw only on a change, so a reader's place (and focus) is kept between reads.
      if (now !== sig) {
        sig = now;
        const parts = [];
        if (u.quotas.length) parts.push(quotasTable(u));
        if (u.budgets.length) parts.push(budgetsTable(u));
        body.replaceChildren(
          ...(parts.length ? parts : [h('p', { class: 'muted' }, 'No quota or cost budget is configured.')]),
        );
      }
    } catch (err) {
      body.replaceChildren(h('p', { class: 'error' }, `Could not load usage: ${err.message}`));
    }
    // Stops by itself once the section left the page (the row closed, another view).
    if (section.isConnected) setTimeout(load, POLL_MS);
  };
  // First read after the section is attached (isConnected is false until then).
  queueMicrotask(load);
  return section;
}
