/**
 * A Lua script sent as EVALSHA, and as EVAL (its text) when the server answers NOSCRIPT: a node
 * that never saw it, restarted, or was failed over to. Used instead of ioredis's defineCommand:
 * a defined command takes its key count as its first argument, and ioredis's auto-pipelining
 * groups a Cluster's commands by the slot of the first argument (lib/autoPipelining.ts), so every
 * script was grouped under the slot of "1" and a pipeline mixing several nodes' keys was refused
 * whole ("All keys in the pipeline should belong to the same slots allocation group"). EVALSHA and
 * EVAL are known commands whose keys ioredis finds (@ioredis/commands), so each script joins the
 * pipeline of the node that holds its keys.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './client.js';

export class LuaScript {
  readonly sha: string;

  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Run with `keys` (KEYS) and `args` (ARGV) on the node that holds the keys. */
  run(client: RedisClient, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return client.evalsha(this.sha, keys.length, ...keys, ...args).catch((err: unknown) => {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return client.eval(this.lua, keys.length, ...keys, ...args);
    });
  }
}
