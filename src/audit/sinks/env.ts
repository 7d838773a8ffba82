/**
 * The seed's environment variables, applied over the config at start:
 * - ENABLE_AUDIT_EVENTS=true (or 1, yes, on) turns the audit log on (`audit.enabled`). false (0,
 *   no, off) never turns off a log the config enables: it is ignored, with a warning, so that an
 *   environment variable cannot silently stop the record.
 * - AUDIT_EVENT_SINK_URL adds an HTTP sink named `env` shipping to that URL.
 * - AUDIT_EVENT_SINK_TOKEN is that sink's bearer token.
 * The token is never logged, never put in an error, and not visible through the admin API (which
 * shows the config file's text, where it does not appear).
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { displayUrl } from './types.js';

export const ENV_SINK_NAME = 'env';

function flag(v: string | undefined): boolean | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const s = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(s)) return true;
  if (['false', '0', 'no', 'off'].includes(s)) return false;
  throw new Error('ENABLE_AUDIT_EVENTS must be true or false');
}

/** Applies the three variables to `config.audit` (in place). Throws on a value that cannot be used, never quoting a secret. */
export function applyAuditEnv(
  config: Config,
  env: NodeJS.ProcessEnv,
  logger: Pick<Logger, 'warn' | 'info'>,
): void {
  const enable = flag(env.ENABLE_AUDIT_EVENTS);
  const url = env.AUDIT_EVENT_SINK_URL?.trim() || undefined;
  const token = env.AUDIT_EVENT_SINK_TOKEN?.trim() || undefined;
  if (enable === true) config.audit = { ...config.audit, enabled: true };
  else if (enable === false && config.audit?.enabled === true)
    logger.warn(
      { event: 'audit_env_ignored', variable: 'ENABLE_AUDIT_EVENTS' },
      'ENABLE_AUDIT_EVENTS=false does not turn off the audit log the config enables',
    );
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token))
    throw new Error(
      'AUDIT_EVENT_SINK_TOKEN holds characters a header cannot carry (spaces or control characters)',
    );
  if (url === undefined) {
    if (token !== undefined)
      logger.warn(
        { event: 'audit_env_ignored', variable: 'AUDIT_EVENT_SINK_TOKEN' },
        'AUDIT_EVENT_SINK_TOKEN is set without AUDIT_EVENT_SINK_URL: no sink uses it',
      );
    return;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error('AUDIT_EVENT_SINK_URL is not a URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new Error(`AUDIT_EVENT_SINK_URL must be http:// or https:// (${displayUrl(url)})`);
  if (config.audit?.enabled !== true) {
    logger.warn(
      { event: 'audit_env_ignored', variable: 'AUDIT_EVENT_SINK_URL' },
      'AUDIT_EVENT_SINK_URL is set but the audit log is off: set ENABLE_AUDIT_EVENTS=true (or audit.enabled)',
    );
    return;
  }
  const sinks = config.audit.sinks ?? [];
  if (sinks.some((s) => s.name === ENV_SINK_NAME))
    throw new Error(`AUDIT_EVENT_SINK_URL adds the sink "${ENV_SINK_NAME}", which audit.sinks already names`);
  config.audit = {
    ...config.audit,
    sinks: [...sinks, { name: ENV_SINK_NAME, type: 'http', url, ...(token === undefined ? {} : { token }) }],
  };
}
