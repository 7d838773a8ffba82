// A tenant's API keys in the tenants view: metadata only (never a secret or a hash), and for roles
// with keys.write a form to create one and a revoke button per active key. A new key's secret is
// shown once, in a modal dialog with a copy button; it lives only in that dialog's DOM and in one
// local variable, both gone when the dialog closes: never in sessionStorage or localStorage, and the
// API cannot return it again (only its hash is kept).
import { api, session } from '../api.js';
import { badge, fmt, h, notify } from '../dom.js';

const keyStatus = (s) =>
  s === 'active'
    ? badge('ok', '✓', 'active', { 'data-field': 'status' })
    : badge('muted', '✗', s, { 'data-field': 'status' });

const KEYS_PAGE = 25;
const keysPath = (t) => `/admin/v1/tenants/${encodeURIComponent(t.id)}/keys`;

/**
 * The one showing of a new key's secret. Modal (focus stays inside, Escape closes), the secret
 * selected for copying; closing removes the dialog and forgets the secret, and focus goes back to
 * `returnTo()`.
 */
function showSecret(t, created, returnTo) {
  let secret = created.secret;
  const status = h('p', { role: 'status', class: 'muted', id: 'key-secret-status' });
  const field = h('input', {
    type: 'text',
    id: 'key-secret',
    readonly: true,
    spellcheck: 'false',
    autocomplete: 'off',
    'aria-describedby': 'key-secret-warning',
  });
  field.value = secret;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      status.textContent = 'Copied to the clipboard.';
    } catch {
      // No clipboard permission (an insecure origin, a policy): leave it selected for Ctrl+C.
      field.focus();
      field.select();
      status.textContent = 'Could not copy by itself: the key is selected, press Ctrl+C (⌘C).';
    }
  };
  const dialog = h(
    'dialog',
    { id: 'key-secret-dialog', class: 'secret', 'aria-labelledby': 'key-secret-title' },
    h('h3', { id: 'key-secret-title' }, `New key ${created.key.prefix} for ${t.id}`),
    h(
      'p',
      { id: 'key-secret-warning' },
      h('strong', {}, 'Shown this once. '),
      'Copy it now and keep it where the client keeps its secrets. Sluice keeps only its hash: once this dialog is closed, nobody can show it again (create another key if it is lost).',
    ),
    h('label', { for: 'key-secret' }, 'API key'),
    field,
    status,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', 'data-action': 'copy-secret', onclick: copy }, 'Copy key'),
      h('button', { type: 'button', 'data-action': 'close-secret', onclick: () => dialog.close() }, 'Done'),
    ),
  );
  dialog.addEventListener('close', () => {
    field.value = '';
    secret = '';
    dialog.remove();
    returnTo()?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  field.focus();
  field.select();
}

/** The keys section of one tenant's details. */
export function keysSection(t) {
  const canWrite = session.can('keys.write');
  const table = h('div', { 'data-keys-table': t.id }, 'Loading keys…');
  const section = h(
    'section',
    { class: 'tenant-keys', 'data-keys-section': t.id, 'aria-label': `Keys of ${t.id}` },
    h('h4', {}, `Keys of ${t.id}`),
  );
  const id = (s) => `key-${t.id}-${s}`;
  // A tenant with many keys is read a page at a time (never every key at once).
  let offset = 0;
  const pager = (total, shown) => {
    if (total <= KEYS_PAGE) return '';
    const go = (to) => () => {
      offset = to;
      void load();
    };
    return h(
      'div',
      { class: 'toolbar' },
      h(
        'button',
        { type: 'button', disabled: offset === 0, onclick: go(Math.max(0, offset - KEYS_PAGE)) },
        '← Previous keys',
      ),
      h(
        'button',
        { type: 'button', disabled: offset + KEYS_PAGE >= total, onclick: go(offset + KEYS_PAGE) },
        'Next keys →',
      ),
      h(
        'span',
        { role: 'status', 'data-keys-count': t.id },
        `${offset + 1}–${offset + shown} of ${total} keys`,
      ),
    );
  };

  async function load() {
    try {
      const { keys, total } = await api('GET', `${keysPath(t)}?limit=${KEYS_PAGE}&offset=${offset}`);
      if (offset > 0 && offset >= total) {
        offset = Math.max(0, Math.ceil(total / KEYS_PAGE) - 1) * KEYS_PAGE;
        return load();
      }
      table.replaceChildren(
        ...(keys.length === 0
          ? [h('p', { class: 'muted' }, 'No keys.')]
          : [pager(total, keys.length), keysTable(keys)]),
      );
    } catch (err) {
      table.replaceChildren(h('p', { class: 'error' }, `Could not load keys: ${err.message}`));
    }
  }

  async function revoke(k) {
    if (
      !window.confirm(
        `Revoke key ${k.prefix} (${k.name}) of ${t.id}? Requests with it are refused at once on every replica. This cannot be undone.`,
      )
    )
      return;
    try {
      await api('DELETE', `${keysPath(t)}/${encodeURIComponent(k.id)}`);
      notify(`Key ${k.prefix} of ${t.id} revoked: requests with it are refused.`);
    } catch (err) {
      notify(`Revoking ${k.prefix} refused: ${err.message}`);
    }
    await load();
    section
      .querySelector(`tr[data-key="${CSS.escape(k.id)}"] [data-field="status"]`)
      ?.closest('tr')
      ?.focus();
  }

  function keysTable(keys) {
    const cols = ['Prefix', 'Name', 'Scopes', 'Status', 'Expires', 'Created', 'Last used'];
    if (canWrite) cols.push('Actions');
    return h(
      'table',
      {},
      h('caption', { class: 'muted' }, `Keys of ${t.id}: metadata only, never a secret`),
      h('thead', {}, h('tr', {}, ...cols.map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        keys.map((k) =>
          h(
            'tr',
            { 'data-key': k.id, 'data-prefix': k.prefix, 'data-status': k.status, tabindex: -1 },
            h('td', {}, h('code', {}, k.prefix)),
            h('td', {}, k.name),
            h('td', {}, k.scopes.join(', ') || '–'),
            h('td', {}, keyStatus(k.status)),
            h('td', {}, k.expiresAt ? fmt.when(k.expiresAt) : 'never'),
            h('td', {}, fmt.when(k.createdAt)),
            h('td', {}, fmt.when(k.lastUsedAt)),
            canWrite
              ? h(
                  'td',
                  {},
                  k.status === 'active'
                    ? h(
                        'button',
                        {
                          type: 'button',
                          class: 'danger',
                          'data-action': 'revoke',
                          onclick: () => revoke(k),
                        },
                        `Revoke ${k.prefix}`,
                      )
                    : '',
                )
              : '',
          ),
        ),
      ),
    );
  }

  if (canWrite) {
    const name = h('input', {
      type: 'text',
      id: id('name'),
      required: true,
      maxlength: 200,
      autocomplete: 'off',
    });
    const expires = h('input', { type: 'datetime-local', id: id('expires') });
    const scopes = h('input', {
      type: 'text',
      id: id('scopes'),
      autocomplete: 'off',
      'aria-describedby': id('scopes-hint'),
    });
    const error = h('p', { class: 'error', role: 'alert' });
    const submit = h('button', { type: 'submit', 'data-action': 'create-key' }, `Create key for ${t.id}`);
    const form = h(
      'form',
      { class: 'key-create', 'data-create-key': t.id, 'aria-label': `New key for ${t.id}` },
      h('span', {}, h('label', { for: id('name') }, 'Name '), name),
      h('span', {}, h('label', { for: id('expires') }, 'Expires (optional, local time) '), expires),
      h(
        'span',
        {},
        h('label', { for: id('scopes') }, 'Scopes '),
        scopes,
        h('span', { class: 'muted', id: id('scopes-hint') }, ' optional, comma-separated'),
      ),
      submit,
      error,
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      error.textContent = '';
      const body = { name: name.value.trim() };
      if (!body.name) {
        error.textContent = 'A key needs a name.';
        name.focus();
        return;
      }
      const s = scopes.value
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      if (s.length) body.scopes = s;
      if (expires.value) {
        const at = new Date(expires.value);
        if (Number.isNaN(at.getTime()) || at.getTime() <= Date.now()) {
          error.textContent = 'The expiry must be in the future.';
          expires.focus();
          return;
        }
        body.expiresAt = at.toISOString();
      }
      submit.disabled = true;
      try {
        const created = await api('POST', keysPath(t), body);
        form.reset();
        notify(`Key ${created.key.prefix} created for ${t.id}.`);
        await load();
        showSecret(t, created, () => section.querySelector('[data-action="create-key"]'));
      } catch (err) {
        error.textContent = `Not created: ${err.message}`;
      } finally {
        submit.disabled = false;
      }
    });
    section.append(form);
  }
  section.append(table);
  void load();
  return section;
}
