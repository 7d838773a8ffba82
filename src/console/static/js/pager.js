// A list paged and searched on the server (/admin/v1/console/routes, …/groups): a search box,
// previous / next and "1–50 of 1000", and the current page re-read on demand (each tick). Only one
// read is in flight at a time; an answer to an older query or page is dropped, never drawn.
import { api } from './api.js';
import { h } from './dom.js';

/**
 * `path`: the list endpoint; `field`: the array in its answer; `render(rows, answer)`: draws a page;
 * `searchDelay`: ms of quiet typing before the search is sent (default 0: every keystroke).
 * Returns `{ toolbar, refresh, stop }`: put the toolbar above the list, call refresh() to re-read
 * the page, stop() when the view goes (a search still waiting is not sent).
 */
export function pagedList({
  id,
  path,
  field,
  limit,
  label,
  placeholder,
  noun,
  render,
  failed,
  searchDelay = 0,
}) {
  let offset = 0;
  let query = '';
  let total = 0;
  let seq = 0;
  let busy = false;
  let again = false;
  const search = h('input', { type: 'search', id: `${id}-search`, 'aria-label': label, placeholder });
  const prev = h('button', { type: 'button', id: `${id}-prev` }, '← Previous');
  const next = h('button', { type: 'button', id: `${id}-next` }, 'Next →');
  const info = h('span', { id: `${id}-count`, role: 'status' });
  const toolbar = h('div', { class: 'toolbar' }, search, prev, next, info);

  async function refresh() {
    // A tick while a read is in flight asks for one more read after it, not a second one at once.
    if (busy) {
      again = true;
      return;
    }
    if (stopped) return;
    busy = true;
    const mine = ++seq;
    const params = new URLSearchParams({ offset: String(offset), limit: String(limit) });
    if (query) params.set('q', query);
    try {
      const answer = await api('GET', `${path}?${params}`);
      if (mine !== seq) return;
      total = answer.total;
      // The list shrank under this page (a reload, a narrower search): go to its last page.
      if (offset > 0 && offset >= total) {
        offset = Math.max(0, Math.floor((total - 1) / limit) * limit);
        again = true;
        return;
      }
      const rows = answer[field];
      info.textContent = total
        ? `${offset + 1}–${offset + rows.length} of ${total}`
        : query
          ? `No ${noun} match “${query}”.`
          : `No ${noun}.`;
      prev.disabled = offset === 0;
      next.disabled = offset + limit >= total;
      render(rows, answer);
    } catch (err) {
      if (mine === seq) failed(err);
    } finally {
      busy = false;
      if (again) {
        again = false;
        void refresh();
      }
    }
  }

  const restart = () => {
    seq++; // an answer still on its way is for the old query or page
    busy = false;
    void refresh();
  };
  let searchTimer;
  let stopped = false;
  search.addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query = search.value.trim();
      offset = 0;
      restart();
    }, searchDelay);
  });
  prev.addEventListener('click', () => {
    offset = Math.max(0, offset - limit);
    restart();
  });
  next.addEventListener('click', () => {
    if (offset + limit < total) offset += limit;
    restart();
  });
  const stop = () => {
    stopped = true;
    seq++;
    clearTimeout(searchTimer);
  };
  return { toolbar, refresh, stop };
}
