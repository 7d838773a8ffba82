/**
 * The errors a config is refused with (file, line, column, path, message), for tests of config
 * checks: from a config text, or from a gateway start. Each fails the test when the config is
 * accepted, or refused for another reason than its content.
 */
import assert from 'node:assert/strict';
import {
  type ConfigError,
  ConfigInvalidError,
  formatConfigError,
  loadConfigText,
} from '../../src/config/load.js';

export function configErrors(text: string, env: NodeJS.ProcessEnv = {}): ConfigError[] {
  try {
    loadConfigText(text, 'conf.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors;
  }
  assert.fail('expected the config to be rejected');
}

/** The same errors, each as `sluice validate` prints it (`conf.yaml:LINE:COL: /path: message`). */
export function configErrorLines(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  return configErrors(text, env).map(formatConfigError);
}

/** The errors a start (e.g. `startGateway(config)`) is refused with; one that starts is stopped. */
export async function startErrors(
  start: Promise<{ stop?: () => Promise<void> } | undefined>,
): Promise<ConfigError[]> {
  try {
    await (await start)?.stop?.();
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors;
  }
  assert.fail('expected the start to be refused for its config');
}
