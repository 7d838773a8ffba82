/**
 * The config text the admin API and the console show (GET /admin/v1/config), with every literal
 * secret replaced by `<redacted>`. `${VAR}` references are what a config should hold and are kept
 * (their values are never in the text); but nothing stops a file from holding a literal
 * (`token: abc`, `store: postgres://u:pw@db/x`, a header `authorization: Bearer …`, or the default
 * of `${TOKEN:-abc}`), and the text as written would show it.
 *
 * Redacted, wherever they are in the file:
 * - the value of a key that names a secret (SECRET_KEY: token, password, secret, apiKey,
 *   authorization, cookie, credentials, …), and of a header whose name ends in `key` or holds `auth` (x-api-key, x-upstream-auth);
 * - the password of a URL with credentials (`scheme://user:PASSWORD@host`);
 * - in both cases a `${VAR}` reference stays, only a literal default (`${VAR:-default}`) goes.
 * The rest of the text (comments, layout, line numbers: reload errors point into it) is unchanged.
 */
import { isMap, isPair, isScalar, isSeq, parseDocument, type Scalar } from 'yaml';

export const REDACTED = '<redacted>';

/** Key names whose values are secrets (case-insensitive, `_` and `-` ignored). */
const SECRET_KEY =
  /(secret|passw|pwd|token|apikey|accesskey|privatekey|authorization|cookie|credential|bearer|signature)/i;
/** Under a `headers` map: any header whose name ends in "key" or holds "auth" (x-api-key, x-upstream-auth). */
const SECRET_HEADER = /(key$|auth)/i;
/** scheme://user:password@ — the password part (not a `${VAR}` reference). */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^\s/@:]*:)([^\s@/]+)(@)/gi;
const REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

const normal = (k: string) => k.replace(/[-_]/g, '');

function isSecretKey(key: string, parents: readonly string[]): boolean {
  if (SECRET_KEY.test(normal(key))) return true;
  return parents.includes('headers') && SECRET_HEADER.test(key);
}

/** A secret value with its `${VAR}` references kept and every literal part replaced. */
function redactSecret(value: string): string {
  if (REF.test(value)) return value;
  const refs = value.match(/\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}/g);
  if (!refs) return REDACTED;
  return refs.map((r) => r.replace(/:-[^}]*\}$/, `:-${REDACTED}}`)).join(' ');
}

function redactUrlPasswords(value: string): string {
  return value.replace(URL_PASSWORD, (all, head: string, pw: string, at: string) =>
    REF.test(pw) ? all : `${head}${REDACTED}${at}`,
  );
}

/** The last text redacted and its result: the running config is asked for again and again. */
let last: { text: string; redacted: string } | undefined;

/** The text with its literal secrets replaced; a text that does not parse is not shown at all. */
export function redactSource(text: string): string {
  if (last?.text === text) return last.redacted;
  const redacted = redact(text);
  last = { text, redacted };
  return redacted;
}

function redact(text: string): string {
  const doc = parseDocument(text, { keepSourceTokens: false, uniqueKeys: false });
  if (doc.errors.length > 0)
    return `# ${REDACTED}: the config text could not be parsed to hide its secrets\n`;
  const edits: { start: number; end: number; text: string }[] = [];
  const visitNode = (node: unknown, parents: string[], secret: boolean) => {
    if (isScalar(node)) {
      const s = node as Scalar;
      if (!s.range) return;
      if (s.value === null || s.value === undefined || typeof s.value === 'boolean') return;
      const original = String(s.value);
      const next = secret ? redactSecret(original) : redactUrlPasswords(original);
      if (next !== original) edits.push({ start: s.range[0], end: s.range[1], text: JSON.stringify(next) });
      return;
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? String(pair.key.value) : '';
        visitNode(pair.value, [...parents, key], secret || isSecretKey(key, parents));
      }
      return;
    }
    if (isSeq(node)) for (const item of node.items) visitNode(item, parents, secret);
  };
  visitNode(doc.contents, [], false);
  let out = text;
  for (const e of edits.sort((a, b) => b.start - a.start))
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return out;
}
