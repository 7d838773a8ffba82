// The audit log: its verification status and latest signed checkpoint (GET /admin/v1/audit/status,
// the store's log verified with the configured keys), a verifiable bundle to download, and a search
// of the entries by time, tenant, actor and type, paged by the server (the `next` cursor).
// audit.read only (auditor, admin): for other roles the server's 403 is said in words.
import { ApiError, api } from '../api.js';
import { badge, fmt, h, notify } from '../dom.js';

export const title = 'Audit';
const PAGE = 25;

const STATES = {
  verified: ['ok', '✓', 'verified'],
  failed: ['bad', '✗', 'failed'],
  'no-checkpoint': ['muted', '…', 'no checkpoint yet'],
};

/** A refusal or an absent log as a sentence, instead of a bare status code. */
function why(err, what) {
  if (err instanceof ApiError && err.status === 403)
    return `Your role may not read the audit log (${what} needs the audit.read permission: the auditor or admin role). The server refused: ${err.message}`;
  if (err instanceof ApiError && err.status === 503)
    return 'The audit log is off: set audit.enabled (with a store) to record and verify it.';
  if (err instanceof ApiError && err.status === 404) return err.message;
  return `Could not load ${what}: ${err.message}`;
}

/** datetime-local (the browser's local time) → ISO instant, or undefined when empty. */
const instant = (v) => (v ? new Date(v).toISOString() : undefined);

function summary(e) {
  const parts = [];
  for (const k of ['action', 'target', 'route', 'reason', 'release', 'signal', 'outcome'])
    if (typeof e[k] === 'string' && e[k]) parts.push(`${k} ${e[k]}`);
  if (typeof e.status === 'number') parts.push(`status ${e.status}`);
  return parts.join(', ') || '–';
}

export function mount(main) {
  let alive = true;
  const statusBox = h('section', {
    id: 'audit-status',
    'aria-labelledby': 'audit-status-h',
    'aria-busy': 'true',
  });
  const exportBox = h('section', { id: 'audit-export', 'aria-labelledby': 'audit-export-h' });
  const form = h('form', { id: 'audit-search', class: 'toolbar filters' });
  const info = h('span', { id: 'audit-count', role: 'status' });
  const prev = h('button', { type: 'button', id: 'audit-prev' }, '← Previous');
  const next = h('button', { type: 'button', id: 'audit-next' }, 'Next →');
  const body = h('tbody');
  const field = (id, label, attrs) =>
    h('label', { for: id }, `${label} `, h('input', { id, name: id, ...attrs }));
  form.append(
    field('audit-since', 'From', { type: 'datetime-local', step: 1 }),
    field('audit-until', 'Until', { type: 'datetime-local', step: 1 }),
    field('audit-tenant', 'Tenant', { type: 'search', spellcheck: 'false' }),
    field('audit-actor', 'Actor', { type: 'search', spellcheck: 'false' }),
    field('audit-type', 'Type', { type: 'search', spellcheck: 'false', placeholder: 'admin_change' }),
    h('button', { type: 'submit' }, 'Search'),
  );
  main.append(
    h('h2', {}, 'Audit log'),
    statusBox,
    exportBox,
    h('h3', { id: 'audit-entries-h' }, 'Entries'),
    form,
    h('div', { class: 'toolbar' }, prev, next, info),
    h(
      'table',
      { id: 'audit-table', 'aria-labelledby': 'audit-entries-h' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['Seq', 'At', 'Type', 'Actor', 'Tenant', 'What', 'Details'].map((c) =>
            h('th', { scope: 'col' }, c),
          ),
        ),
      ),
      body,
    ),
  );

  // ---- verification status and latest checkpoint
  async function loadStatus() {
    statusBox.setAttribute('aria-busy', 'true');
    try {
      const s = await api('GET', '/admin/v1/audit/status');
      if (!alive) return;
      const [tone, sym, word] = STATES[s.state] ?? ['muted', '?', s.state];
      const cp = s.checkpoint;
      const dl = h('dl', { class: 'facts' });
      const fact = (k, v, attrs = {}) => dl.append(h('dt', {}, k), h('dd', attrs, v));
      fact('Chain', badge(tone, sym, word, { 'data-field': 'chain-state', 'data-state': s.state }));
      fact('Entries verified', String(s.entriesVerified), { 'data-field': 'entries-verified' });
      fact('Checkpoints verified', String(s.checkpointsVerified));
      fact(
        'Scope',
        s.scope === 'whole'
          ? `the whole log (indexes 0 to ${s.to})`
          : `indexes ${s.from} to ${s.to} and the latest ${s.limits.checkpoints} checkpoints (the log is beyond ${s.limits.entries} entries: verify the rest with sluice audit verify --store)`,
      );
      fact('Waiting for the next checkpoint', `${s.pending} entries`);
      fact('Checked', `${fmt.when(s.checkedAt)} in ${Math.round(s.durationMs)} ms`);
      const cpBox = cp
        ? h(
            'dl',
            { class: 'facts', id: 'audit-checkpoint' },
            h('dt', {}, 'Tree size'),
            h('dd', { 'data-field': 'tree-size' }, String(cp.treeSize)),
            h('dt', {}, 'Time'),
            h('dd', {}, fmt.when(cp.at)),
            h('dt', {}, 'Origin'),
            h('dd', {}, h('code', {}, cp.origin)),
            h('dt', {}, 'Root hash'),
            h('dd', {}, h('code', { class: 'wrap' }, cp.rootHash)),
            h('dt', {}, 'Signature'),
            h(
              'dd',
              { 'data-field': 'signature' },
              cp.signatureVerified
                ? badge('ok', '✓', `verified with ${cp.verifiedBy.join(', ')}`)
                : badge('bad', '✗', `not verified: ${cp.detail ?? 'no configured key signed it'}`),
            ),
          )
        : h('p', { class: 'muted' }, 'No signed checkpoint yet.');
      const problems =
        s.problemCount > 0
          ? h(
              'div',
              { id: 'audit-problems' },
              h('h4', {}, `${s.problemCount} problem${s.problemCount === 1 ? '' : 's'}`),
              h(
                'ul',
                {},
                s.problems.map((p) =>
                  h(
                    'li',
                    { 'data-kind': p.kind },
                    badge('bad', '✗', p.kind),
                    p.index === undefined ? ' ' : ` at index ${p.index}: `,
                    p.detail,
                  ),
                ),
              ),
            )
          : '';
      statusBox.replaceChildren(
        h('h3', { id: 'audit-status-h' }, 'Verification'),
        h('div', { class: 'cols' }, dl, h('div', {}, h('h4', {}, 'Latest checkpoint'), cpBox)),
        problems,
        h(
          'button',
          { type: 'button', id: 'audit-reverify', onclick: () => void loadStatus() },
          'Verify again',
        ),
      );
    } catch (err) {
      if (!alive) return;
      statusBox.replaceChildren(
        h('h3', { id: 'audit-status-h' }, 'Verification'),
        h('p', { class: 'error', role: 'alert', id: 'audit-refused' }, why(err, 'the audit log')),
      );
    } finally {
      statusBox.setAttribute('aria-busy', 'false');
    }
  }

  // ---- export
  let vkey = '<VKEY>';
  const command = h('code', { id: 'audit-verify-command' });
  const showCommand = () => {
    command.textContent = `sluice audit verify --bundle sluice-audit-bundle.json --key '${vkey}'`;
  };
  async function download() {
    try {
      const bundle = await api('GET', '/admin/v1/audit/export');
      const blob = new Blob([JSON.stringify(bundle, null, 2)], { type: 'application/json' });
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: 'sluice-audit-bundle.json', hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      notify(`Bundle of ${bundle.entries.length} entries downloaded (sluice-audit-bundle.json).`);
    } catch (err) {
      notify(why(err, 'the export'));
    }
  }
  exportBox.append(
    h('h3', { id: 'audit-export-h' }, 'Export'),
    h(
      'p',
      {},
      h(
        'button',
        { type: 'button', id: 'audit-download', onclick: () => void download() },
        'Download a verifiable bundle',
      ),
      ' then verify it offline, with the key pinned out of band:',
    ),
    h('pre', {}, command),
  );
  showCommand();
  api('GET', '/admin/v1/audit/checkpoints')
    .then((r) => {
      if (r.publicKeys[0]) vkey = r.publicKeys[0];
      showCommand();
    })
    .catch(() => {});

  // ---- search, paged by the server: a stack of the cursors of the pages seen
  let cursors = [undefined];
  let at = 0;
  let nextCursor = null;
  const open = new Set();
  let query = {};

  async function loadPage() {
    const q = new URLSearchParams({ limit: String(PAGE) });
    for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
    if (cursors[at] !== undefined) q.set('after', cursors[at]);
    body.setAttribute('aria-busy', 'true');
    try {
      const r = await api('GET', `/admin/v1/audit/entries?${q}`);
      if (!alive) return;
      nextCursor = r.next;
      prev.disabled = at === 0;
      next.disabled = nextCursor === null;
      info.textContent = r.entries.length
        ? `page ${at + 1}: entries ${r.entries[0].seq} to ${r.entries[r.entries.length - 1].seq}`
        : 'No entries match.';
      const rows = [];
      for (const x of r.entries) {
        const e = x.opened ?? x.entry;
        const key = String(x.seq);
        rows.push(
          h(
            'tr',
            { 'data-seq': key, 'data-type': e.type },
            h('th', { scope: 'row', class: 'num' }, key),
            h('td', {}, fmt.when(e.at ?? x.integratedAt)),
            h('td', { 'data-field': 'type' }, e.type),
            h('td', { 'data-field': 'actor' }, e.actor ?? e.principal ?? '–'),
            h('td', {}, e.tenant ?? '–'),
            h('td', {}, summary(e)),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  'aria-expanded': String(open.has(key)),
                  onclick: () => {
                    open.has(key) ? open.delete(key) : open.add(key);
                    void loadPage();
                  },
                },
                open.has(key) ? 'Hide' : 'Details',
              ),
            ),
          ),
        );
        if (open.has(key))
          rows.push(
            h(
              'tr',
              { 'data-details-of': key },
              h('td', { colspan: 7 }, h('pre', { class: 'json' }, JSON.stringify(x, null, 2))),
            ),
          );
      }
      body.replaceChildren(...rows);
    } catch (err) {
      if (!alive) return;
      prev.disabled = true;
      next.disabled = true;
      info.textContent = '';
      body.replaceChildren(
        h('tr', {}, h('td', { colspan: 7, class: 'error' }, why(err, 'the audit entries'))),
      );
    } finally {
      body.setAttribute('aria-busy', 'false');
    }
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = (id) => form.querySelector(`#${id}`).value.trim();
    query = {
      since: instant(v('audit-since')),
      until: instant(v('audit-until')),
      tenant: v('audit-tenant'),
      actor: v('audit-actor'),
      type: v('audit-type'),
    };
    cursors = [undefined];
    at = 0;
    void loadPage();
  });
  prev.addEventListener('click', () => {
    at = Math.max(0, at - 1);
    void loadPage();
  });
  next.addEventListener('click', () => {
    if (nextCursor === null) return;
    cursors[at + 1] = nextCursor;
    at++;
    void loadPage();
  });

  void loadStatus();
  void loadPage();
  return () => {
    alive = false;
  };
}
