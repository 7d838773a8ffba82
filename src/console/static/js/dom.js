// Builds DOM nodes from data without innerHTML: names and reasons from the API are text, never markup.

/** h('td', { class: 'num' }, 'text', child…): attributes starting with "on" are listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A state as a symbol and a word (and a colour, never alone). `tone`: ok | bad | warn | muted. */
export function badge(tone, symbol, text, attrs = {}) {
  return h(
    'span',
    { class: `state ${tone}`, ...attrs },
    h('span', { 'aria-hidden': 'true' }, `${symbol} `),
    text,
  );
}

export const fmt = {
  rate: (v) => (v === null || v === undefined ? '–' : v >= 100 ? v.toFixed(0) : v.toFixed(1)),
  ms: (v) => (v === null || v === undefined ? '–' : v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`),
  pct: (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(v < 0.01 && v > 0 ? 2 : 1)} %`),
  time: (iso) => (iso ? new Date(iso).toLocaleTimeString() : '–'),
  when: (iso) => (iso ? new Date(iso).toLocaleString() : '–'),
};

/** Shows a message in the live region (errors of actions, confirmations). */
export function notify(text) {
  const n = document.getElementById('notice');
  if (n) n.textContent = text;
}
