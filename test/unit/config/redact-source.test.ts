/**
 * The config text GET /admin/v1/config shows: literal secrets replaced, `${VAR}` references and the
 * rest of the text (comments, lines) kept. Expectations written out by hand.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactSource } from '../../../src/config/redact-source.js';

test('literal secrets are redacted wherever they are; references, comments and lines stay', () => {
  const text = [
    '# the gateway',
    'store: postgres://sluice:hunter2@db:5432/sluice',
    'redis:',
    '  url: redis://:r3dis@cache:6379',
    'audit:',
    '  sinks:',
    '    siem:',
    '      url: https://siem.example/in',
    '      token: tok-literal-123',
    '    other:',
    '      token: ${SIEM_TOKEN}',
    '    third:',
    '      token: ${SIEM_TOKEN:-fallback-secret}',
    'routes:',
    '  - name: a',
    '    headers:',
    '      request:',
    '        set: { authorization: "Bearer abc.def", x-api-key: k-123, x-upstream-auth: s3cr3t, x-trace: on }',
    '    sentinel: { password: "p@ss", name: mymaster }',
    '  - name: b # a comment',
    '    url: postgres://u:${DB_PASSWORD}@h/x',
    '',
  ].join('\n');
  const out = redactSource(text);
  for (const secret of ['hunter2', 'r3dis', 'tok-literal-123', 'fallback-secret', 'abc.def', 'k-123', 'p@ss'])
    assert.ok(!out.includes(secret), `${secret} is not shown:\n${out}`);
  const lines = out.split('\n');
  assert.equal(lines.length, text.split('\n').length, 'same lines: reload errors point into the text');
  assert.equal(lines[0], '# the gateway');
  assert.equal(lines[1], 'store: "postgres://sluice:<redacted>@db:5432/sluice"');
  assert.equal(lines[3], '  url: "redis://:<redacted>@cache:6379"');
  assert.equal(lines[7], '      url: https://siem.example/in');
  assert.equal(lines[8], '      token: "<redacted>"');
  assert.equal(lines[10], '      token: ${SIEM_TOKEN}');
  assert.equal(lines[12], '      token: "${SIEM_TOKEN:-<redacted>}"');
  assert.equal(
    lines[17],
    '        set: { authorization: "<redacted>", x-api-key: "<redacted>", x-upstream-auth: "<redacted>", x-trace: on }',
  );
  assert.equal(lines[18], '    sentinel: { password: "<redacted>", name: mymaster }');
  assert.equal(lines[19], '  - name: b # a comment');
  assert.equal(lines[20], '    url: postgres://u:${DB_PASSWORD}@h/x');
});

test('a text without secrets comes back unchanged', () => {
  const text = 'listen: { port: 8080 }\nroutes:\n  - name: a\n    upstream: up\n';
  assert.equal(redactSource(text), text);
});
