/**
 * The forwarded flags header: an RFC 8941 Structured Field Dictionary, one member per flag that
 * evaluated, `key=value`. Booleans are `?1`/`?0`, integers and decimals (3 decimals at most) are
 * numbers, printable ASCII strings are sf-strings, other strings are RFC 9651 Display Strings
 * (`%"caf%c3%a9"`), JSON objects (and numbers SF cannot carry) are sf-strings holding their JSON
 * (non-ASCII escaped as \uXXXX). Each member is serialised once per compiled flag and variant.
 */

const printable = /^[\x20-\x7e]*$/;

function sfString(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function displayString(s: string): string {
  let out = '%"';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b === 0x25 || b === 0x22 || b < 0x20 || b > 0x7e) out += `%${b.toString(16).padStart(2, '0')}`;
    else out += String.fromCharCode(b);
  }
  return `${out}"`;
}

function asciiJson(v: unknown): string {
  return JSON.stringify(v).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** A dictionary member `key=value` for one flag value. */
export function sfMember(key: string, v: unknown): string {
  if (typeof v === 'boolean') return `${key}=${v ? '?1' : '?0'}`;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= 999_999_999_999_999) return `${key}=${v}`;
    if (Math.abs(v) < 1e12 && Math.round(v * 1000) / 1000 === v) {
      const s = v.toFixed(3).replace(/0+$/, '');
      return `${key}=${s.endsWith('.') ? `${s}0` : s}`;
    }
    return `${key}=${sfString(String(v))}`;
  }
  if (typeof v === 'string') return `${key}=${printable.test(v) ? sfString(v) : displayString(v)}`;
  return `${key}=${sfString(asciiJson(v))}`;
}
