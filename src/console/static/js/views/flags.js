// Feature flags: every flag (searched and paged on the server, through pager.js) with its state, variants, default
// variant, targeting rules and rollout percentages, and its change history (who, when, what, why).
// Roles with flags.write edit enabled, the default variant and the rollout percentages, with a
// reason, sent with the revision the page read (If-Match): a change someone made meanwhile is
// refused by the server (409) and said here, never silently overwritten.
import { ApiError, api, authHeaders, session } from '../api.js';
import { badge, fmt, h, notify } from '../dom.js';
import { pagedList } from '../pager.js';

export const title = 'Flags';
const PAGE = 20;
const SEARCH_DELAY_MS = 250;

const stateBadge = (enabled) =>
  enabled
    ? badge('ok', '✓', 'enabled', { 'data-field': 'state' })
    : badge('muted', '⏸', 'disabled: everyone gets the default variant', { 'data-field': 'state' });

const show = (v) => JSON.stringify(v);
const list = (xs) => xs.map(show).join(', ');

function condition(c) {
  if (c.in !== undefined) return `${c.attribute} is one of ${list(c.in)}`;
  if (c.notIn !== undefined) return `${c.attribute} is none of ${list(c.notIn)}`;
  if (c.present !== undefined) return `${c.attribute} is ${c.present ? 'present' : 'absent'}`;
  return `${c.attribute} matches /${c.matches}/`;
}

const split = (r) => r.variants.map((v) => `${v.variant} ${v.weight} %`).join(', ');
const rolloutText = (r) => `by ${r.by}: ${split(r)}`;

/** The PUT of a whole definition, with the revision it replaces and the reason (percent-encoded: headers are ASCII). */
async function put(key, spec, revision, reason) {
  const res = await fetch(`/admin/v1/flags/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: {
      ...authHeaders(),
      accept: 'application/json',
      'content-type': 'application/json',
      'if-match': `"${revision}"`,
      'x-sluice-reason': encodeURIComponent(reason),
    },
    body: JSON.stringify(spec),
    cache: 'no-store',
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : undefined;
  // A revoked token: let the shared wrapper see a 401 too, it signs the tab out.
  if (res.status === 401) await session.load().catch(() => {});
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** What one change did, in words: the fields the console edits, then whatever else moved. */
export function whatChanged(c) {
  if (c.action === 'flag.create') return 'created';
  if (c.action === 'flag.delete') return 'deleted';
  const a = c.before?.spec;
  const b = c.after?.spec;
  if (!a || !b) return c.action;
  const out = [];
  if (a.enabled !== b.enabled) out.push(b.enabled ? 'enabled' : 'disabled');
  if (a.defaultVariant !== b.defaultVariant) out.push(`default ${a.defaultVariant} → ${b.defaultVariant}`);
  const ra = a.rollout ? split(a.rollout) : 'none';
  const rb = b.rollout ? split(b.rollout) : 'none';
  if (ra !== rb) out.push(`rollout ${ra} → ${rb}`);
  if (show(a.rules ?? []) !== show(b.rules ?? [])) out.push('targeting rules changed');
  if (show(a.variants) !== show(b.variants)) out.push('variants changed');
  if ((a.description ?? '') !== (b.description ?? '')) out.push('description changed');
  if ((a.seed ?? '') !== (b.seed ?? '')) out.push('seed changed (everyone reshuffled)');
  return out.length ? out.join('; ') : 'rewritten, nothing changed';
}

function rulesList(rules) {
  if (!rules?.length) return h('p', { class: 'muted' }, 'No targeting rules.');
  return h(
    'ol',
    { class: 'rules' },
    rules.map((r, i) =>
      h(
        'li',
        { 'data-rule': i },
        r.name ? h('strong', {}, `${r.name}: `) : '',
        `when ${r.when.map(condition).join(' and ')} → `,
        r.variant !== undefined ? `variant ${r.variant}` : `rollout ${rolloutText(r.rollout)}`,
      ),
    ),
  );
}

function variantsTable(f) {
  return h(
    'table',
    { class: 'variants' },
    h('caption', { class: 'muted' }, `Variants of ${f.key}`),
    h('thead', {}, h('tr', {}, ...['Variant', 'Value', 'Default'].map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      {},
      Object.entries(f.spec.variants).map(([name, value]) =>
        h(
          'tr',
          { 'data-variant': name },
          h('th', { scope: 'row' }, name),
          h('td', {}, h('code', {}, show(value))),
          h('td', {}, name === f.spec.defaultVariant ? badge('ok', '★', 'default') : ''),
        ),
      ),
    ),
  );
}

function historyList(changes) {
  if (changes.length === 0) return h('p', { class: 'muted' }, 'No changes recorded.');
  return h(
    'ol',
    { class: 'timeline', reversed: true },
    changes.map((c) =>
      h(
        'li',
        { 'data-change': c.id, 'data-actor': c.actor },
        h('time', { datetime: c.at }, fmt.when(c.at)),
        h('strong', {}, c.actor),
        ` (${c.role}) · `,
        c.after?.revision !== undefined ? `revision ${c.after.revision} · ` : '',
        h('span', { 'data-field': 'what' }, whatChanged(c)),
        c.after?.reason ? h('span', { 'data-field': 'reason' }, ` · reason: ${c.after.reason}`) : '',
      ),
    ),
  );
}

/** The edit form: enabled, default variant, every rollout's percentages, and a reason. */
function editForm(f, { save, cancel }) {
  const id = (s) => `edit-${f.key}-${s}`;
  const enabled = h('input', { type: 'checkbox', id: id('enabled'), checked: f.spec.enabled });
  const dflt = h(
    'select',
    { id: id('default') },
    Object.keys(f.spec.variants).map((v) =>
      h('option', { value: v, selected: v === f.spec.defaultVariant }, v),
    ),
  );
  /** Each rollout with its inputs (the one for everyone else, those of rules) and where it sits in a spec. */
  const rollouts = [];
  const rolloutFieldset = (r, label, path, pick) => {
    const total = h('p', { class: 'muted', role: 'status', 'data-field': 'total' });
    const inputs = r.variants.map((v, i) =>
      h('input', {
        type: 'number',
        id: id(`${path}-${i}`),
        min: 0,
        max: 100,
        step: 0.01,
        value: v.weight,
        required: true,
        'data-weight': v.variant,
      }),
    );
    const sum = () => {
      const t = inputs.reduce((s, x) => s + Math.round(Number(x.value) * 100), 0) / 100;
      total.textContent = t === 100 ? 'Total 100 %.' : `Total ${t} %: the weights must sum to 100 %.`;
      return t;
    };
    for (const x of inputs) x.addEventListener('input', sum);
    sum();
    rollouts.push({ pick, inputs, sum, label });
    return h(
      'fieldset',
      { 'data-rollout': path },
      h('legend', {}, `${label} (sticky by ${r.by})`),
      r.variants.map((v, i) =>
        h('span', { class: 'weight' }, h('label', { for: id(`${path}-${i}`) }, `${v.variant} %`), inputs[i]),
      ),
      total,
    );
  };
  const reason = h('input', {
    type: 'text',
    id: id('reason'),
    required: true,
    maxlength: 500,
    autocomplete: 'off',
    'aria-describedby': id('reason-hint'),
  });
  const error = h('p', { class: 'error', role: 'alert', id: id('error') });
  const form = h(
    'form',
    { class: 'flag-edit', 'data-edit': f.key, 'aria-label': `Edit flag ${f.key}`, novalidate: true },
    h(
      'p',
      { class: 'muted' },
      `Editing revision ${f.revision}. If someone changes the flag before you save, the save is refused and nothing is overwritten.`,
    ),
    h(
      'div',
      {},
      enabled,
      h('label', { for: id('enabled') }, ' Enabled (unchecked: everyone gets the default variant)'),
    ),
    h('div', {}, h('label', { for: id('default') }, 'Default variant '), dflt),
    f.spec.rollout
      ? rolloutFieldset(f.spec.rollout, 'Rollout for everyone else', 'top', (s) => s.rollout)
      : '',
    (f.spec.rules ?? []).map((r, i) =>
      r.rollout
        ? rolloutFieldset(
            r.rollout,
            `Rollout of rule ${r.name ?? i + 1}`,
            `rule-${i}`,
            (s) => s.rules[i].rollout,
          )
        : '',
    ),
    h(
      'div',
      {},
      h('label', { for: id('reason') }, 'Reason '),
      reason,
      h('span', { class: 'muted', id: id('reason-hint') }, ' Kept with the change in its history.'),
    ),
    error,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', 'data-action': 'save' }, `Save ${f.key}`),
      h('button', { type: 'button', 'data-action': 'cancel', onclick: cancel }, 'Cancel'),
    ),
  );
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      cancel();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    error.textContent = '';
    const why = reason.value.trim();
    if (!why) {
      error.textContent = 'Say why: the reason is kept with the change.';
      reason.focus();
      return;
    }
    for (const ro of rollouts)
      if (ro.sum() !== 100) {
        error.textContent = `${ro.label}: the weights must sum to 100 %.`;
        ro.inputs[0].focus();
        return;
      }
    // The definition the page read, with only the edited fields replaced.
    const spec = structuredClone(f.spec);
    spec.enabled = enabled.checked;
    spec.defaultVariant = dflt.value;
    for (const ro of rollouts)
      ro.pick(spec).variants.forEach((v, i) => {
        v.weight = Number(ro.inputs[i].value);
      });
    void save(spec, why, error);
  });
  return { form, focus: () => enabled.focus() };
}

export function mount(main) {
  let flags = [];
  let drawn = 0;
  let stopped = false;
  /** Keys whose history is open, and the history read for each. */
  const histories = new Map();
  let editing = null;

  const listEl = h('div', { id: 'flags' }, h('p', { class: 'muted' }, 'Loading…'));
  const pager = pagedList({
    id: 'flag',
    path: '/admin/v1/flags',
    field: 'flags',
    limit: PAGE,
    label: 'Search flags by key or description',
    placeholder: 'Search key or description',
    noun: 'flags',
    searchDelay: SEARCH_DELAY_MS,
    render: (rows) => void showPage(rows),
    failed: (err) =>
      listEl.replaceChildren(
        h(
          'p',
          { class: 'error', role: 'alert' },
          err instanceof ApiError && err.status === 503
            ? 'No store is configured: flags need one.'
            : `Could not load flags: ${err.message}`,
        ),
      ),
  });
  main.append(h('h2', {}, 'Flags'), pager.toolbar, listEl);

  /** A page read: the open histories of its flags read again, then drawn (unless a newer page came). */
  async function showPage(rows) {
    const mine = ++drawn;
    flags = rows;
    for (const k of [...histories.keys()]) if (!flags.some((f) => f.key === k)) histories.delete(k);
    try {
      await Promise.all([...histories.keys()].map(loadHistory));
    } catch (err) {
      notify(`Could not read a flag's history: ${err.message}`);
    }
    if (!stopped && mine === drawn) draw();
  }

  const refocus = (key, action) =>
    listEl.querySelector(`[data-flag="${CSS.escape(key)}"] [data-action="${action}"]`)?.focus();

  async function loadHistory(key) {
    const { changes } = await api('GET', `/admin/v1/flags/${encodeURIComponent(key)}/history?limit=20`);
    histories.set(key, changes);
  }

  async function reloadFlag(key) {
    const f = await api('GET', `/admin/v1/flags/${encodeURIComponent(key)}`);
    flags = flags.map((x) => (x.key === key ? f : x));
    if (histories.has(key)) await loadHistory(key);
  }

  async function save(f, spec, reason, error) {
    try {
      const saved = await put(f.key, spec, f.revision, reason);
      flags = flags.map((x) => (x.key === f.key ? saved : x));
      editing = null;
      await loadHistory(f.key);
      notify(`Flag ${f.key} saved: revision ${saved.revision}. Every replica applies it within a second.`);
      draw();
      refocus(f.key, 'edit');
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) {
        let now = '';
        try {
          const cur = await api('GET', `/admin/v1/flags/${encodeURIComponent(f.key)}`);
          now = ` It is now at revision ${cur.revision}, changed by ${cur.updatedBy} at ${fmt.when(cur.updatedAt)}.`;
        } catch {}
        const msg = `Not saved: flag ${f.key} was changed by someone else since this page read revision ${f.revision}.${now} Nothing was overwritten; reload the flag, check the change, and edit again.`;
        error.replaceChildren(
          msg,
          ' ',
          h(
            'button',
            {
              type: 'button',
              'data-action': 'reload',
              onclick: async () => {
                editing = null;
                await reloadFlag(f.key);
                draw();
                refocus(f.key, 'edit');
              },
            },
            `Reload ${f.key}`,
          ),
        );
        error.dataset.conflict = 'true';
        notify(msg);
      } else {
        error.textContent = `Not saved: ${err.message}`;
        notify(`Saving ${f.key} refused: ${err.message}`);
      }
    }
  }

  function card(f) {
    const canEdit = session.can('flags.write');
    const hist = histories.get(f.key);
    const isEditing = editing === f.key;
    let edit;
    if (isEditing)
      edit = editForm(f, {
        save: (spec, why, error) => save(f, spec, why, error),
        cancel: () => {
          editing = null;
          draw();
          refocus(f.key, 'edit');
        },
      });
    const el = h(
      'article',
      {
        class: 'flag',
        'data-flag': f.key,
        'data-enabled': String(f.spec.enabled),
        'data-revision': f.revision,
        'aria-labelledby': `flag-${f.key}`,
      },
      h(
        'header',
        {},
        h('h3', { id: `flag-${f.key}` }, f.key),
        stateBadge(f.spec.enabled),
        h('span', { 'data-field': 'revision' }, `revision ${f.revision}`),
        h('span', { class: 'muted' }, `changed by ${f.updatedBy} at ${fmt.when(f.updatedAt)}`),
      ),
      f.spec.description ? h('p', {}, f.spec.description) : '',
      variantsTable(f),
      h('h4', {}, 'Targeting rules (first match decides)'),
      rulesList(f.spec.rules),
      h(
        'p',
        { 'data-field': 'rollout' },
        h('strong', {}, 'Everyone else: '),
        f.spec.rollout
          ? `rollout ${rolloutText(f.spec.rollout)}`
          : `no rollout: the default variant (${f.spec.defaultVariant})`,
      ),
      h(
        'div',
        { class: 'actions', role: 'group', 'aria-label': `Actions on ${f.key}` },
        h(
          'button',
          {
            type: 'button',
            'data-action': 'history',
            'aria-expanded': String(hist !== undefined),
            'aria-controls': `history-${f.key}`,
            onclick: async () => {
              if (histories.has(f.key)) histories.delete(f.key);
              else
                try {
                  await loadHistory(f.key);
                } catch (err) {
                  notify(`Could not load the history of ${f.key}: ${err.message}`);
                }
              draw();
              refocus(f.key, 'history');
            },
          },
          hist ? `Hide history of ${f.key}` : `History of ${f.key}`,
        ),
        canEdit && !isEditing
          ? h(
              'button',
              {
                type: 'button',
                'data-action': 'edit',
                onclick: () => {
                  editing = f.key;
                  draw();
                },
              },
              `Edit ${f.key}`,
            )
          : '',
      ),
      edit ? edit.form : '',
      hist
        ? h(
            'section',
            { id: `history-${f.key}`, class: 'history', 'aria-label': `Changes of ${f.key}` },
            h('h4', {}, 'Changes, newest first'),
            historyList(hist),
          )
        : '',
    );
    return { el, focus: edit?.focus };
  }

  function draw() {
    const cards = flags.map(card);
    listEl.replaceChildren(
      ...(cards.length ? cards.map((c) => c.el) : [h('p', { class: 'muted' }, 'No flags to show.')]),
    );
    for (const c of cards) c.focus?.();
  }

  void pager.refresh();
  return () => {
    stopped = true;
    pager.stop();
  };
}
