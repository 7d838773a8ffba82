// Tenants and their keys: search and pages (long lists are never drawn whole), suspend and resume
// for roles with tenants.suspend, keys' metadata for roles with keys.read (never a secret), and a
// tenant's details: keys (create, revoke with keys.write) and usage against its quotas and budgets.
// The list is paged and searched on the server (GET /admin/v1/tenants?q=&limit=&offset=): with
// thousands of tenants the page reads and draws 25.
import { ApiError, api, session } from '../api.js';
import { badge, h, notify } from '../dom.js';
import { keysSection } from './tenant-keys.js';
import { usageSection } from './tenant-usage.js';

export const title = 'Tenants';
const PAGE = 25;

const status = (s) =>
  s === 'active'
    ? badge('ok', '✓', 'active', { 'data-field': 'status' })
    : badge('bad', '⏸', s, { 'data-field': 'status' });

export function mount(main) {
  let shown = [];
  let total = 0;
  let page = 0;
  let query = '';
  let seq = 0;
  const open = new Set();
  const search = h('input', {
    type: 'search',
    id: 'tenant-search',
    'aria-label': 'Search tenants by id or name',
    placeholder: 'Search id or name',
  });
  const info = h('span', { id: 'tenant-count', role: 'status' });
  const prev = h('button', { type: 'button', id: 'tenant-prev' }, '← Previous');
  const next = h('button', { type: 'button', id: 'tenant-next' }, 'Next →');
  const body = h('tbody');
  main.append(
    h('h2', {}, 'Tenants'),
    h('div', { class: 'toolbar' }, search, prev, next, info),
    h(
      'table',
      { id: 'tenants-table' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Id', 'Name', 'Plan', 'Region', 'Status', 'Actions'].map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      body,
    ),
  );

  const failed = (err) =>
    body.replaceChildren(
      h(
        'tr',
        {},
        h(
          'td',
          { colspan: 6, class: 'error' },
          err instanceof ApiError && err.status === 503
            ? 'No store is configured: tenants need one.'
            : `Could not load tenants: ${err.message}`,
        ),
      ),
    );

  /** Reads the current page from the server; an answer to an older query or page is dropped. */
  async function load() {
    const mine = ++seq;
    const params = new URLSearchParams({ limit: String(PAGE), offset: String(page * PAGE) });
    if (query) params.set('q', query);
    try {
      const r = await api('GET', `/admin/v1/tenants?${params}`);
      if (mine !== seq) return;
      if (page > 0 && page * PAGE >= r.total) {
        // The list shrank under this page: show its last one.
        page = Math.max(0, Math.ceil(r.total / PAGE) - 1);
        return load();
      }
      shown = r.tenants;
      total = r.total;
      await draw();
    } catch (err) {
      if (mine === seq) failed(err);
    }
  }

  // A tenant's details: its keys (tenant-keys.js) and its usage against its limits (tenant-usage.js).
  async function keysRow(t) {
    const cell = h(
      'td',
      { colspan: 6 },
      session.can('keys.read') ? keysSection(t) : '',
      session.can('usage.read') ? usageSection(t) : '',
    );
    return h('tr', { 'data-keys-of': t.id }, cell);
  }

  async function act(t, action) {
    try {
      const updated = await api('POST', `/admin/v1/tenants/${encodeURIComponent(t.id)}/${action}`);
      shown = shown.map((x) => (x.id === t.id ? updated : x));
      notify(`Tenant ${t.id} ${action === 'suspend' ? 'suspended: its requests are refused' : 'resumed'}.`);
      await draw();
      body.querySelector(`tr[data-tenant="${CSS.escape(t.id)}"] button[data-action]`)?.focus();
    } catch (err) {
      notify(`${action} ${t.id} refused: ${err.message}`);
    }
  }

  async function draw() {
    const pages = Math.max(1, Math.ceil(total / PAGE));
    info.textContent = total
      ? `${page * PAGE + 1}–${page * PAGE + shown.length} of ${total}`
      : 'No tenants match.';
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    const out = [];
    for (const t of shown) {
      const actions = [];
      if (session.can('tenants.suspend'))
        actions.push(
          t.status === 'active'
            ? h(
                'button',
                {
                  type: 'button',
                  class: 'danger',
                  'data-action': 'suspend',
                  onclick: () => act(t, 'suspend'),
                },
                `Suspend ${t.id}`,
              )
            : h(
                'button',
                { type: 'button', 'data-action': 'resume', onclick: () => act(t, 'resume') },
                `Resume ${t.id}`,
              ),
        );
      if (session.can('keys.read') || session.can('usage.read'))
        actions.push(
          h(
            'button',
            {
              type: 'button',
              'aria-expanded': String(open.has(t.id)),
              'data-keys': t.id,
              onclick: () => {
                open.has(t.id) ? open.delete(t.id) : open.add(t.id);
                void draw();
              },
            },
            open.has(t.id) ? `Hide keys and usage of ${t.id}` : `Keys and usage of ${t.id}`,
          ),
        );
      out.push(
        h(
          'tr',
          { 'data-tenant': t.id, 'data-status': t.status },
          h('th', { scope: 'row' }, t.id),
          h('td', {}, t.name),
          h('td', {}, t.plan ?? '–'),
          h('td', {}, t.region ?? '–'),
          h('td', {}, status(t.status)),
          h('td', { class: 'row-actions' }, actions),
        ),
      );
      if (open.has(t.id)) out.push(await keysRow(t));
    }
    body.replaceChildren(...out);
  }

  search.addEventListener('input', () => {
    query = search.value.trim();
    page = 0;
    void load();
  });
  prev.addEventListener('click', () => {
    page = Math.max(0, page - 1);
    void load();
  });
  next.addEventListener('click', () => {
    page++;
    void load();
  });

  void load();
  return () => {};
}
