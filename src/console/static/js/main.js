// The console's shell: token login, the navigation (hash routes, so every view has a link and the
// back button works), and the one live stream every view shares.
import { ApiError, session, token, whenUnauthorized } from './api.js';
import { notify } from './dom.js';
import { onState, openStream } from './stream.js';
import * as audit from './views/audit.js';
import * as config from './views/config.js';
import * as releases from './views/releases.js';
import * as slo from './views/slo.js';
import * as tenants from './views/tenants.js';
import * as traffic from './views/traffic.js';
import * as upstreams from './views/upstreams.js';

const VIEWS = { traffic, upstreams, releases, tenants };
Object.assign(VIEWS, { slo, audit, config });
const $ = (id) => document.getElementById(id);
let closeStream;
let unmount;

function showLogin(message = '') {
  closeStream?.();
  closeStream = undefined;
  unmount?.();
  unmount = undefined;
  $('app').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').focus();
}

function route() {
  if ($('app').hidden) return;
  const name = location.hash.replace(/^#/, '') || 'traffic';
  const view = VIEWS[name] ?? traffic;
  for (const a of document.querySelectorAll('nav a'))
    if (a.getAttribute('href') === `#${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  unmount?.();
  notify('');
  const main = $('main');
  main.replaceChildren();
  unmount = view.mount(main);
  document.title = `${view.title} · Sluice console`;
}

async function start() {
  try {
    await session.load();
  } catch (err) {
    token.clear();
    const why = err instanceof ApiError && err.status === 401 ? 'That token was not accepted.' : err.message;
    return showLogin(why);
  }
  $('login').hidden = true;
  $('app').hidden = false;
  $('who').textContent = `${session.name} (${session.roles.join(', ') || 'no role'})`;
  closeStream = openStream(() => showLogin('Signed out: the token is no longer accepted.'));
  route();
  $('main').focus();
}

whenUnauthorized(() => {
  token.clear();
  showLogin('Signed out: the token is no longer accepted.');
});

onState((s) => {
  const live = $('live');
  if (live) live.textContent = s === 'live' ? '● live' : `○ ${s}`;
  live?.setAttribute('data-state', s);
});

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const t = $('token').value.trim();
  if (!t) return;
  token.set(t);
  $('token').value = '';
  void start();
});
$('logout').addEventListener('click', () => {
  token.clear();
  showLogin();
});
window.addEventListener('hashchange', route);

if (token.get()) void start();
else showLogin();
