/** The errors a config text is refused with (file, line, column, path, message); fails the test when it loads. */
import assert from 'node:assert/strict';
import { type ConfigError, ConfigInvalidError, loadConfigText } from '../../src/config/load.js';

export function configErrors(text: string, env: NodeJS.ProcessEnv = {}): ConfigError[] {
  try {
    loadConfigText(text, 'conf.yaml', env);
  } catch (err) {
    assert.ok(err instanceof ConfigInvalidError, String(err));
    return err.errors;
  }
  assert.fail('expected the config to be rejected');
}
