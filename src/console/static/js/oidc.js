// The login through the identity provider of admin.auth: OAuth 2.0 authorization code with PKCE
// (RFC 7636), as a public client run by the browser (OAuth 2.0 for Browser-Based Apps).
//
// - code_verifier: 32 bytes of crypto.getRandomValues; the challenge is its SHA-256 (S256).
// - state and nonce: random per attempt, checked on return (state against the answer, nonce in the
//   ID token), with the issuer's `iss` (RFC 9207) when it sends one.
// - The verifier, state and nonce live in sessionStorage only for the round trip, and are removed
//   before the answer is used: a second use of the same answer finds nothing.
// - response_mode=fragment: the code comes back after `#`, which the browser never sends, so it
//   reaches neither the admin listener nor a proxy's access log; the page takes it out of the address
//   at once.
// - The code is exchanged at the issuer's token endpoint by this page (CORS: the issuer must allow
//   this origin for the client, as SPA registrations do). The access token is then used exactly like
//   a pasted admin token (api.js): the server verifies it as any admin.auth token, roles included.
//   No refresh token is asked for: when the token expires, the user signs in again.

const PENDING = 'sluice.console.oidc.pending';

/** Where the login page learns whether SSO is offered (public, no credential). */
export async function loginOptions() {
  const res = await fetch('/admin/v1/console/login-options', { cache: 'no-store' });
  if (!res.ok) throw new Error(`login options: HTTP ${res.status}`);
  return res.json();
}

function base64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function random(n = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

async function s256(verifier) {
  return base64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
}

function redirectUri(sso) {
  return `${location.origin}${sso.redirectPath}`;
}

/** Leaves for the issuer's authorization endpoint; the browser comes back to sso.redirectPath. */
export async function beginLogin(sso) {
  const verifier = random(32);
  const pending = {
    verifier,
    state: random(16),
    nonce: random(16),
    issuer: sso.issuer,
    label: sso.label,
    clientId: sso.clientId,
    tokenEndpoint: sso.tokenEndpoint,
    redirectUri: redirectUri(sso),
    resource: sso.resource,
  };
  sessionStorage.setItem(PENDING, JSON.stringify(pending));
  const q = new URLSearchParams({
    response_type: 'code',
    response_mode: 'fragment',
    client_id: sso.clientId,
    redirect_uri: pending.redirectUri,
    scope: sso.scopes.join(' '),
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  });
  if (sso.resource) q.set('resource', sso.resource);
  location.assign(`${sso.authorizationEndpoint}?${q}`);
}

/** Thrown for every refused answer; `message` is for the login page. */
export class LoginError extends Error {}

function claimsOf(jwt) {
  const part = typeof jwt === 'string' ? jwt.split('.')[1] : undefined;
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const text = new TextDecoder().decode(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** True when this page load is the issuer sending the browser back. */
export function isCallback() {
  return location.pathname === '/console/callback';
}

/**
 * Finishes a login on the callback page: checks the answer, exchanges the code.
 * Resolves to { accessToken, expiresAt (ms, or undefined), label, user } or throws LoginError.
 */
export async function completeLogin() {
  // Fragment (asked for); the query only when a provider ignored response_mode.
  const params = new URLSearchParams(location.hash.length > 1 ? location.hash.slice(1) : location.search);
  // The code leaves the address bar and the history before anything else.
  history.replaceState(null, '', '/console/');
  const raw = sessionStorage.getItem(PENDING);
  sessionStorage.removeItem(PENDING);
  const pending = raw ? JSON.parse(raw) : undefined;
  if (!pending) throw new LoginError('No sign-in was in progress in this tab: start again.');
  if (params.get('state') !== pending.state)
    throw new LoginError('Sign-in refused: the answer does not belong to the sign-in started here (state).');
  const iss = params.get('iss');
  if (iss !== null && iss !== pending.issuer)
    throw new LoginError('Sign-in refused: the answer comes from another issuer.');
  const error = params.get('error');
  if (error) {
    const why = params.get('error_description');
    throw new LoginError(`${pending.label} refused the sign-in: ${error}${why ? ` (${why})` : ''}.`);
  }
  const code = params.get('code');
  if (!code) throw new LoginError('Sign-in refused: the answer has no code.');

  const body = new URLSearchParams({
    grant_type: 'authorization_code',
    code,
    redirect_uri: pending.redirectUri,
    client_id: pending.clientId,
    code_verifier: pending.verifier,
  });
  if (pending.resource) body.set('resource', pending.resource);
  let res;
  try {
    res = await fetch(pending.tokenEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body,
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new LoginError(
      `${pending.label} could not be reached to finish the sign-in (its token endpoint must allow this origin: CORS).`,
    );
  }
  const json = await res.json().catch(() => ({}));
  if (!res.ok || typeof json.access_token !== 'string')
    throw new LoginError(
      `${pending.label} did not issue a token: ${json.error ?? `HTTP ${res.status}`}${json.error_description ? ` (${json.error_description})` : ''}.`,
    );
  // The ID token came straight from the token endpoint over the connection this page opened, so
  // its signature need not be checked here (OpenID Connect Core 3.1.3.7); its nonce, issuer and
  // audience must match this sign-in. The access token is checked by the server on every call.
  const id = claimsOf(json.id_token);
  if (!id)
    throw new LoginError(`Sign-in refused: ${pending.label} sent no ID token (ask for the openid scope).`);
  if (id.nonce !== pending.nonce)
    throw new LoginError('Sign-in refused: the ID token is not for this sign-in (nonce).');
  const aud = Array.isArray(id.aud) ? id.aud : [id.aud];
  if (id.iss !== pending.issuer || !aud.includes(pending.clientId))
    throw new LoginError('Sign-in refused: the ID token names another issuer or client.');
  const ttl = Number(json.expires_in);
  return {
    accessToken: json.access_token,
    expiresAt: Number.isFinite(ttl) && ttl > 0 ? Date.now() + ttl * 1000 : undefined,
    label: pending.label,
    user: id.preferred_username ?? id.email ?? id.name ?? id.sub,
  };
}
