// The console's shell: token login, the navigation (hash routes, so every view has a link and the
// back button works), and the one live stream every view shares.
import { ApiError, session, token, whenUnauthorized } from './api.js';
import { notify } from './dom.js';
import { offerSso, returnFromIssuer } from './sso-login.js';
import { onState, openStream } from './stream.js';
import * as audit from './views/audit.js';
import * as config from './views/config.js';
import * as flags from './views/flags.js';
import * as releases from './views/releases.js';
import * as slo from './views/slo.js';
import * as tenants from './views/tenants.js';
import * as traffic from './views/traffic.js';
import * as upstreams from './views/upstreams.js';

const VIEWS = { traffic, upstreams, releases, tenants, flags, slo, audit, config };
const $ = (id) => document.getElementById(id);
let closeStream;
let unmount;
let expiry;

/** Why the token stopped working: a login through the issuer says which, and what to do. */
function refusedMessage() {
  const meta = token.meta();
  return meta
    ? `Signed out: your sign-in with ${meta.label} expired or was refused. Sign in again.`
    : 'Signed out: the token is no longer accepted.';
}

function showLogin(message = '') {
  clearTimeout(expiry);
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
    const refused = token.meta()
      ? 'The identity provider signed you in, but this gateway did not accept its token (audience, issuer or roles): ask your administrator.'
      : 'That token was not accepted.';
    const why = err instanceof ApiError && err.status === 401 ? refused : err.message;
    token.clear();
    return showLogin(why);
  }
  $('login').hidden = true;
  $('app').hidden = false;
  const meta = token.meta();
  $('who').textContent = `${session.name} (${session.roles.join(', ') || 'no role'})`;
  $('who').append(
    Object.assign(document.createElement('span'), {
      className: 'who-via',
      textContent:
        session.via === 'oidc' ? ` · signed in with ${meta?.label ?? 'the identity provider'}` : ' · token',
    }),
  );
  $('who').dataset.via = session.via;
  // A token from the issuer says when it expires: back to the login page then, not at the next 401.
  if (meta?.expiresAt)
    expiry = setTimeout(
      () => {
        const label = token.meta()?.label ?? 'the identity provider';
        token.clear();
        showLogin(`Your sign-in with ${label} expired. Sign in again.`);
      },
      Math.max(0, meta.expiresAt - Date.now()),
    );
  closeStream = openStream(() => {
    const why = refusedMessage();
    token.clear();
    showLogin(why);
  });
  route();
  $('main').focus();
}

whenUnauthorized(() => {
  const why = refusedMessage();
  token.clear();
  showLogin(why);
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

void offerSso((message) => {
  $('login-error').textContent = message;
});
returnFromIssuer().then(
  (r) => {
    if (r) token.set(r.token, r.meta);
    if (token.get()) void start();
    else showLogin();
  },
  (err) => showLogin(err.message),
);
