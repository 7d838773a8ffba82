// Tenants and their keys: search and pages (long lists are never drawn whole), suspend and resume
// for roles with tenants.suspend, keys' metadata for roles with keys.read (never a secret), and a
// tenant's details: keys (create, revoke with keys.write) and usage against its quotas and budgets.
// The list is paged and searched on the server (GET /admin/v1/tenants?q=&limit=&offset=, through
// pager.js): with thousands of tenants the page reads and draws 25.
import { ApiError, api, session } from '../api.js';
import { badge, h, notify } from '../dom.js';
import { pagedList } from '../pager.js';
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
  const open = new Set();
  const body = h('tbody');

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

  const list = pagedList({
    id: 'tenant',
    path: '/admin/v1/tenants',
    field: 'tenants',
    limit: PAGE,
    label: 'Search tenants by id or name',
    placeholder: 'Search id or name',
    noun: 'tenants',
    render: (rows) => {
      shown = rows;
      void draw();
    },
    failed,
  });
  main.append(
    h('h2', {}, 'Tenants'),
    list.toolbar,
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

  /** Draws the page read last (again after a suspend, a resume or a row opened, without a read). */
  async function draw() {
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

  void list.refresh();
  return () => {};
}
