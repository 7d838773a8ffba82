// The login page's "Sign in with <issuer>" button and the return from the issuer, between main.js
// (the shell) and oidc.js (the protocol).
import { beginLogin, completeLogin, isCallback, LoginError, loginOptions } from './oidc.js';

const $ = (id) => document.getElementById(id);

/** Shows the button when admin.auth offers the console login; `fail(message)` shows a refusal. */
export async function offerSso(fail) {
  let options;
  try {
    options = await loginOptions();
  } catch {
    return; // The token login still works; nothing to offer.
  }
  const sso = options.sso;
  if (!sso) return;
  const button = $('sso-button');
  button.textContent = `Sign in with ${sso.label}`;
  button.disabled = Boolean(sso.unavailable);
  if (sso.unavailable) button.title = sso.unavailable;
  button.onclick = () => {
    button.disabled = true;
    beginLogin(sso).catch((err) => {
      button.disabled = false;
      fail(`The sign-in could not start: ${err.message}`);
    });
  };
  $('sso').hidden = false;
  if (sso.unavailable) fail(`Sign-in with ${sso.label} is unavailable now: ${sso.unavailable}.`);
}

/**
 * On the callback page: the token and what to show about it ({ token, meta }), or undefined when
 * this load is not a return from the issuer. Throws an Error whose message is for the login page.
 */
export async function returnFromIssuer() {
  if (!isCallback()) return undefined;
  try {
    const r = await completeLogin();
    return { token: r.accessToken, meta: { label: r.label, expiresAt: r.expiresAt, user: r.user } };
  } catch (err) {
    throw err instanceof LoginError ? err : new Error(`The sign-in failed: ${err.message}`);
  }
}
