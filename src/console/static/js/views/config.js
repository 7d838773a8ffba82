// The running config: its version, file, when it was loaded, the Sluice version, the source text
// (the server redacts literal secrets: `${VAR}` references stay, values never), and the last reload
// attempts with the errors of refused ones. A reload button for roles with config.reload.
import { ApiError, api, session } from '../api.js';
import { badge, fmt, h, notify } from '../dom.js';

export const title = 'Config';

const RESULTS = {
  applied: ['ok', '✓', 'applied'],
  unchanged: ['muted', '=', 'unchanged'],
  rejected: ['bad', '✗', 'refused'],
};

const errorLine = (e) =>
  h(
    'li',
    { 'data-field': 'reload-error' },
    h('code', {}, `${e.file}:${e.line}:${e.column}`),
    e.path ? ` at ${e.path}: ` : ': ',
    e.message,
  );

export function mount(main) {
  let alive = true;
  const facts = h('dl', { class: 'facts', id: 'config-facts' });
  const history = h('tbody');
  const source = h('pre', { id: 'config-source', class: 'source', tabindex: '0' });
  const reload = session.can('config.reload')
    ? h(
        'button',
        { type: 'button', id: 'config-reload', onclick: () => void doReload() },
        'Reload the config file',
      )
    : '';
  main.append(
    h('h2', {}, 'Config'),
    facts,
    h('div', { class: 'toolbar' }, reload),
    h('h3', { id: 'reloads-h' }, 'Reload history'),
    h(
      'table',
      { id: 'reloads-table', 'aria-labelledby': 'reloads-h' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...['At', 'Trigger', 'Result', 'Version after', 'Errors'].map((c) => h('th', { scope: 'col' }, c)),
        ),
      ),
      history,
    ),
    h('h3', { id: 'source-h' }, 'Source'),
    h(
      'p',
      { class: 'muted' },
      'As written in the file; literal secrets are replaced by <redacted> by the server.',
    ),
    source,
  );

  async function load() {
    try {
      const [cfg, ver, rl] = await Promise.all([
        api('GET', '/admin/v1/config'),
        api('GET', '/admin/v1/version'),
        api('GET', '/admin/v1/config/reloads'),
      ]);
      if (!alive) return;
      facts.replaceChildren(
        h('dt', {}, 'Running version'),
        h('dd', { 'data-field': 'config-version' }, h('code', {}, cfg.version)),
        h('dt', {}, 'File'),
        h('dd', {}, h('code', {}, cfg.file)),
        h('dt', {}, 'Loaded at'),
        h('dd', {}, fmt.when(cfg.loadedAt)),
        h('dt', {}, 'Sluice'),
        h('dd', { 'data-field': 'sluice-version' }, ver.sluice),
      );
      source.textContent = cfg.source;
      history.replaceChildren(
        ...(rl.reloads.length === 0
          ? [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, 'No reload since this process started.'))]
          : rl.reloads.map((r) =>
              h(
                'tr',
                { 'data-result': r.result },
                h('td', {}, fmt.when(r.at)),
                h('td', {}, r.trigger),
                h('td', {}, badge(...(RESULTS[r.result] ?? ['muted', '?', r.result]))),
                h('td', {}, h('code', {}, r.version), r.previous ? ` (was ${r.previous})` : ''),
                h('td', {}, r.errors?.length ? h('ul', { class: 'errors' }, r.errors.map(errorLine)) : '–'),
              ),
            )),
      );
    } catch (err) {
      if (!alive) return;
      facts.replaceChildren(
        h('p', { class: 'error', role: 'alert' }, `Could not load the config: ${err.message}`),
      );
    }
  }

  async function doReload() {
    try {
      const r = await api('POST', '/admin/v1/config/reload');
      notify(r.result === 'applied' ? `Config ${r.version} applied.` : `Config unchanged (${r.version}).`);
    } catch (err) {
      const n = err instanceof ApiError ? (err.problem?.errors?.length ?? 0) : 0;
      notify(
        err instanceof ApiError && err.status === 422
          ? `Reload refused (${n} error${n === 1 ? '' : 's'}): the running config stays.`
          : `Reload refused: ${err.message}`,
      );
    }
    await load();
  }

  void load();
  return () => {
    alive = false;
  };
}
