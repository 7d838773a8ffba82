// Releases: state, step, weight, plan, the last judgement's checks with their figures and reasons,
// the current step's figures per arm, and the decisions as a timeline. Pause, resume, promote and
// abort appear only for roles with releases.operate (the server refuses the others anyway).
import { ApiError, api, session } from '../api.js';
import { badge, fmt, h, notify } from '../dom.js';

export const title = 'Releases';
const POLL_MS = 2000;

const STATES = {
  pending: ['muted', '○', 'pending'],
  running: ['ok', '▶', 'running'],
  paused: ['warn', '⏸', 'paused'],
  promoted: ['ok', '✓', 'promoted'],
  aborted: ['bad', '■', 'aborted'],
};
const VERDICTS = {
  pass: ['ok', '✓', 'pass'],
  fail: ['bad', '✗', 'fail'],
  insufficient: ['warn', '…', 'insufficient data'],
};

/** What each state allows (the server's state machine decides; this only avoids offering a refusal). */
const ALLOWED = {
  pending: ['start', 'abort'],
  running: ['pause', 'promote', 'abort'],
  paused: ['resume', 'promote', 'abort'],
  promoted: ['start'],
  aborted: ['start'],
};
const LABELS = { start: 'Start', pause: 'Pause', resume: 'Resume', promote: 'Promote', abort: 'Abort' };

const stateBadge = (s) => badge(...(STATES[s] ?? ['muted', '?', s]), { 'data-field': 'state' });
const verdictBadge = (v) => (v ? badge(...(VERDICTS[v] ?? ['muted', '?', v])) : '');

function figures(f) {
  return Object.entries(f ?? {})
    .map(([k, v]) => `${k} ${v === null ? '–' : Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(', ');
}

function armRow(name, a) {
  const ratio = a.requests > 0 ? a.errors / a.requests : null;
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, name),
    h('td', { class: 'num' }, String(a.requests)),
    h('td', { class: 'num' }, String(a.errors)),
    h('td', { class: 'num' }, fmt.pct(ratio)),
    h('td', { class: 'num' }, String(a.upstreamFailures)),
  );
}

/** Consecutive identical holds (the driver judges every interval) as one line with a count. */
function collapse(history) {
  const out = [];
  for (const e of history) {
    const last = out[out.length - 1];
    if (
      last &&
      e.action === 'hold' &&
      last.e.action === 'hold' &&
      last.e.verdict === e.verdict &&
      last.e.step === e.step
    )
      last.n++;
    else out.push({ e, n: 1 });
  }
  return out;
}

function releaseCard(r, history, act) {
  const actions = session.can('releases.operate')
    ? (ALLOWED[r.state] ?? []).map((a) =>
        h(
          'button',
          {
            type: 'button',
            class: a === 'abort' ? 'danger' : undefined,
            'data-action': a,
            onclick: () => act(r, a),
          },
          `${LABELS[a]} ${r.name}`,
        ),
      )
    : [];
  const j = r.lastJudgement;
  return h(
    'article',
    { class: 'release', 'data-release': r.name, 'data-state': r.state, 'aria-labelledby': `rel-${r.name}` },
    h(
      'header',
      {},
      h('h3', { id: `rel-${r.name}` }, r.name),
      stateBadge(r.state),
      h('span', {}, `${r.strategy} on route ${r.route}: ${r.stable ?? 'route upstream'} → ${r.candidate}`),
      h('span', { 'data-field': 'step' }, `step ${Math.min(r.step + 1, r.steps)} of ${r.steps}`),
      h('span', { 'data-field': 'weight' }, `${r.weight}% on ${r.candidate}`),
    ),
    r.reason ? h('p', {}, h('strong', {}, 'Reason: '), r.reason) : '',
    actions.length > 0
      ? h('div', { class: 'actions', role: 'group', 'aria-label': `Actions on ${r.name}` }, actions)
      : '',
    h(
      'p',
      { class: 'muted' },
      'Plan: ',
      r.plan.map((s, i) => `${i === r.step ? '▸' : ''}${s.kind} ${s.weight}%`).join(' → '),
    ),
    r.current
      ? h(
          'table',
          { class: 'arms' },
          h(
            'caption',
            { class: 'muted' },
            `This step so far (${r.current.replicas} replica${r.current.replicas === 1 ? '' : 's'})`,
          ),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, 'Version'),
              ...['Requests', '5xx', 'Error %', 'Upstream failures'].map((c) =>
                h('th', { scope: 'col', class: 'num' }, c),
              ),
            ),
          ),
          h(
            'tbody',
            {},
            armRow(`stable (${r.stable ?? 'route upstream'})`, r.current.stable),
            armRow(`candidate (${r.candidate})`, r.current.candidate),
          ),
        )
      : '',
    j
      ? h(
          'div',
          {},
          h(
            'h4',
            {},
            'Last judgement ',
            verdictBadge(j.verdict),
            h('span', { class: 'muted' }, ` at ${fmt.time(j.at)}, step ${j.step + 1}`),
          ),
          h(
            'table',
            {},
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ...['Check', 'Verdict', 'Figures', 'Reason'].map((c) => h('th', { scope: 'col' }, c)),
              ),
            ),
            h(
              'tbody',
              {},
              j.checks.map((c) =>
                h(
                  'tr',
                  {},
                  h('td', {}, c.check),
                  h('td', {}, verdictBadge(c.verdict)),
                  h('td', {}, figures(c.figures)),
                  h('td', {}, c.reason),
                ),
              ),
            ),
          ),
        )
      : '',
    h('h4', {}, 'Decisions'),
    h(
      'ol',
      { class: 'timeline', reversed: true },
      collapse(history).map(({ e, n }) =>
        h(
          'li',
          { 'data-action': e.action },
          h('time', { datetime: e.at }, fmt.when(e.at)),
          h('strong', {}, e.action),
          n > 1 ? ` ×${n}` : '',
          ` step ${e.step + 1}, ${e.weight}% · ${e.actor} `,
          verdictBadge(e.verdict),
          e.reason ? ` · ${e.reason}` : '',
        ),
      ),
    ),
  );
}

export function mount(main) {
  const list = h('div', { id: 'releases' }, h('p', { class: 'muted' }, 'Loading…'));
  main.append(h('h2', {}, 'Releases'), list);
  let stopped = false;
  let timer;

  const load = async () => {
    clearTimeout(timer);
    try {
      const { releases } = await api('GET', '/admin/v1/releases');
      const histories = await Promise.all(
        releases.map((r) =>
          api('GET', `/admin/v1/releases/${encodeURIComponent(r.name)}/history?limit=50`).then(
            (x) => x.events,
          ),
        ),
      );
      if (stopped) return;
      // Redraw only when something changed, so keyboard focus on a button is not lost every poll.
      const sig = JSON.stringify([
        releases.map((r) => [r.name, r.revision, r.current]),
        histories.map((x) => x[0]?.id),
      ]);
      if (sig !== list.dataset.sig) {
        const focused =
          document.activeElement?.dataset?.action &&
          document.activeElement.closest('[data-release]')?.dataset.release;
        const focusedAction = document.activeElement?.dataset?.action;
        list.dataset.sig = sig;
        list.replaceChildren(
          ...(releases.length
            ? releases.map((r, i) => releaseCard(r, histories[i], act))
            : [h('p', {}, 'No releases are declared.')]),
        );
        if (focused)
          list
            .querySelector(`[data-release="${CSS.escape(focused)}"] [data-action="${focusedAction}"]`)
            ?.focus();
      }
    } catch (err) {
      if (stopped) return;
      list.replaceChildren(
        h(
          'p',
          { class: 'error', role: 'alert' },
          err instanceof ApiError && err.status === 503
            ? 'No store is configured: releases need one.'
            : `Could not load releases: ${err.message}`,
        ),
      );
    }
    if (!stopped) timer = setTimeout(load, POLL_MS);
  };

  const act = async (r, action) => {
    if (
      (action === 'abort' || action === 'promote') &&
      !window.confirm(
        `${LABELS[action]} release ${r.name}? ${action === 'abort' ? `All traffic goes back to ${r.stable ?? 'the stable version'}.` : `All traffic goes to ${r.candidate}.`}`,
      )
    )
      return;
    try {
      await api('POST', `/admin/v1/releases/${encodeURIComponent(r.name)}/${action}`, {
        reason: `${action} from the console`,
      });
      notify(`${LABELS[action]}: ${r.name} done.`);
    } catch (err) {
      notify(`${LABELS[action]} ${r.name} refused: ${err.message}`);
    }
    await load();
  };

  void load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
