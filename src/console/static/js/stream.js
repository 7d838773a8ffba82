// The live traffic stream: server-sent events read with fetch() so the token goes in the
// Authorization header (EventSource cannot send one). Reconnects with backoff; keeps the last ticks
// so a view opened later has history to draw.
import { authHeaders } from './api.js';

export const HISTORY = 300;
export const ticks = [];
const listeners = new Set();
const stateListeners = new Set();
let state = 'connecting';

export function onTick(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
export function onState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}
const setState = (s) => {
  state = s;
  for (const fn of stateListeners) fn(s);
};

function dispatch(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (event !== 'tick' || data.length === 0) return;
  const tick = JSON.parse(data.join('\n'));
  ticks.push(tick);
  if (ticks.length > HISTORY) ticks.shift();
  for (const fn of listeners) fn(tick);
}

/** Opens the stream until the returned function is called; `unauthorized` on a 401. */
export function openStream(unauthorized) {
  const ctl = new AbortController();
  let stopped = false;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  (async () => {
    let delay = 500;
    while (!stopped) {
      try {
        const res = await fetch('/admin/v1/console/stream', {
          headers: { ...authHeaders(), accept: 'text/event-stream' },
          signal: ctl.signal,
          cache: 'no-store',
        });
        if (res.status === 401) {
          setState('signed out');
          unauthorized();
          return;
        }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        setState('live');
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            dispatch(buf.slice(0, i));
            buf = buf.slice(i + 2);
          }
        }
      } catch {
        if (stopped) return;
      }
      if (stopped) return;
      setState('reconnecting');
      await sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  })();
  return () => {
    stopped = true;
    ctl.abort();
  };
}
