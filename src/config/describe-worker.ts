/**
 * Ajv's description of a refused config, computed in a short-lived worker thread and waited for
 * synchronously. A gateway that is serving never compiles Ajv's whole-config validator in its own
 * isolate: having run that generated function once slowed every proxied request by 15–25% for the
 * life of the process (bench/README.md, "A config validator that slowed the hot path"), and a
 * mistyped reload must not do that. The wait blocks the event loop for the worker's start and
 * Ajv's compile (a few hundred ms), only when a reload is refused.
 */
import { createRequire } from 'node:module';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { ErrorObject, Options } from 'ajv';

// CommonJS, evaluated in the worker: no loader hooks (tsx) needed, nothing of Sluice imported.
const source = `
const { workerData } = require('node:worker_threads');
const { ajvPath, options, schema, data, port, flag } = workerData;
let out;
try {
  const m = require(ajvPath);
  const Ajv = m.Ajv || m.default || m;
  const validate = new Ajv(options).compile(schema);
  out = validate(data) ? { valid: true } : { valid: false, errors: validate.errors };
} catch (err) {
  out = { failed: String((err && err.message) || err) };
}
port.postMessage(out);
Atomics.store(flag, 0, 1);
Atomics.notify(flag, 0);
`;

type Reply = { valid: true } | { valid: false; errors: ErrorObject[] } | { failed: string };

/**
 * Ajv's errors (with `options`) for `data` against `schema` (a plain JSON Schema), or undefined when Ajv finds it
 * valid. Throws when the worker fails or does not answer within `timeoutMs`.
 */
export function describeInWorker(
  options: Options,
  schema: object,
  data: unknown,
  timeoutMs = 30_000,
): ErrorObject[] | undefined {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(source, {
    eval: true,
    execArgv: [],
    workerData: {
      ajvPath: createRequire(import.meta.url).resolve('ajv'),
      options,
      schema,
      data,
      port: port2,
      flag,
    },
    transferList: [port2],
  });
  try {
    const waited = Atomics.wait(flag, 0, 0, timeoutMs);
    const reply = receiveMessageOnPort(port1)?.message as Reply | undefined;
    if (waited === 'timed-out' || reply === undefined)
      throw new Error(`describing the configuration's errors took longer than ${timeoutMs} ms`);
    if ('failed' in reply) throw new Error(`describing the configuration's errors failed: ${reply.failed}`);
    return reply.valid ? undefined : reply.errors;
  } finally {
    port1.close();
    void worker.terminate();
  }
}
