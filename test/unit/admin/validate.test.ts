/**
 * The admin API's compilers on their own: request bodies are matched exactly (no coercion, unknown
 * fields refused, defaults filled), path and query text is coerced to the declared types, and a
 * response that does not match its schema throws instead of being sent (naming the route, the
 * status and where it differs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ResponseInvalidError,
  requestValidatorCompiler,
  responseSerializerCompiler,
} from '../../../src/admin/validate.js';

type Check = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null };

const schema = {
  type: 'object',
  properties: {
    n: { type: 'integer' },
    tags: { type: 'array', items: { type: 'string' } },
    mode: { type: 'string', default: 'fast' },
  },
  required: ['n'],
  additionalProperties: false,
};

function compile(httpPart: string): Check {
  const c = requestValidatorCompiler();
  return c({ schema, httpPart, method: 'POST', url: '/x' } as Parameters<typeof c>[0]) as Check;
}

test('a body: no coercion, no unknown fields, every error listed with its path; defaults filled', () => {
  const body = compile('body');
  const ok: Record<string, unknown> = { n: 1 };
  assert.equal(body(ok), true);
  assert.equal(ok.mode, 'fast', 'the default is filled in');
  const wrong = { n: '1', tags: 'a', extra: true };
  assert.equal(body(wrong), false);
  const errs = (body.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).sort();
  assert.deepEqual(errs, [
    '/ must NOT have additional properties',
    '/n must be integer',
    '/tags must be array',
  ]);
  assert.equal(wrong.n, '1', 'the string was not turned into a number');
  assert.equal(body({}), false);
  assert.equal(body.errors?.[0]?.message, "must have required property 'n'");
});

test('query and path parameters are text: coerced to the declared types (a single value to an array)', () => {
  for (const part of ['querystring', 'params']) {
    const q = compile(part);
    const data: Record<string, unknown> = { n: '20', tags: 'one' };
    assert.equal(q(data), true, part);
    assert.equal(data.n, 20);
    assert.deepEqual(data.tags, ['one']);
    assert.equal(q({ n: 'twenty' }), false, part);
  }
});

test('a response that matches its schema is sent as JSON; one with an undeclared field throws', () => {
  const c = responseSerializerCompiler();
  const serialize = c({
    schema: {
      type: 'object',
      properties: { id: { type: 'string' } },
      required: ['id'],
      additionalProperties: false,
    },
    method: 'GET',
    url: '/admin/v1/things/:id',
    httpStatus: '200',
  } as Parameters<typeof c>[0]);
  assert.equal(serialize({ id: 'a' }), '{"id":"a"}');
  assert.throws(
    () => serialize({ id: 'a', secretHash: 'deadbeef' }),
    (err: Error) => {
      assert.ok(err instanceof ResponseInvalidError);
      assert.equal(
        err.message,
        'response of GET /admin/v1/things/:id (200) does not match its schema: / must NOT have additional properties',
      );
      assert.doesNotMatch(err.message, /deadbeef/, 'the value that leaked is not quoted');
      return true;
    },
  );
  assert.throws(() => serialize({ id: 7 }), /\/id must be string/);
});
