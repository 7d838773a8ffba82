/**
 * `${VAR}` and `${VAR:-default}` in string values. Done on parsed YAML scalars, not on the raw
 * text, so positions in errors stay exact and an error can quote the `${VAR}` form, never a value.
 */
import { parse as parseYamlScalar } from 'yaml';

const ref = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const wholeRef = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}$/;

export interface InterpolationResult {
  value: unknown;
  /** Variables referenced without default and not set. */
  missing: string[];
  /** True when the value came (partly) from the environment: never echo it. */
  fromEnv: boolean;
}

export function interpolate(s: string, env: NodeJS.ProcessEnv): InterpolationResult {
  if (!s.includes('${')) return { value: s, missing: [], fromEnv: false };
  const missing: string[] = [];
  const whole = wholeRef.exec(s);
  if (whole) {
    const v = lookup(env, whole[1]!, whole[2]);
    if (v === undefined) return { value: '', missing: [whole[1]!], fromEnv: true };
    // A whole-value reference takes the type YAML would give the text (so `port: ${PORT:-8080}` is a number).
    let typed: unknown = v;
    try {
      const parsed: unknown = parseYamlScalar(v);
      if (typeof parsed === 'number' || typeof parsed === 'boolean') typed = parsed;
    } catch {
      typed = v;
    }
    return { value: typed, missing, fromEnv: true };
  }
  const value = s.replace(ref, (_m, name: string, dflt: string | undefined) => {
    const v = lookup(env, name, dflt);
    if (v === undefined) {
      missing.push(name);
      return '';
    }
    return v;
  });
  return { value, missing, fromEnv: true };
}

/** As in the shell: `${VAR:-default}` takes the default when VAR is unset or empty. */
function lookup(env: NodeJS.ProcessEnv, name: string, dflt: string | undefined): string | undefined {
  const v = env[name];
  return dflt !== undefined && (v === undefined || v === '') ? dflt : v;
}
