/**
 * When does one Authorization value hold more than one credential? RFC 9110 §11.4: one scheme,
 * then one token68 or a list of `name=value` parameters; a comma anywhere else starts another
 * credential (docs/security.md#headers-that-must-be-single).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentialListProblem } from '../../../src/dataplane/request-head.js';

test('one credential: token68, or one scheme with a parameter list (commas inside quotes too)', () => {
  for (const v of [
    'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig',
    'Bearer abc==',
    'Basic YWxhZGRpbjpvcGVuc2VzYW1l',
    'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", nonce="7ypf", response="8ca5"',
    'Digest username="a, b", realm="r, s"',
    'Digest username="a \\" , b", realm=r',
    'AWS4-HMAC-SHA256 Credential=AKIA/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=fe5f80f7',
    'Custom a=1,b=2',
    'Custom a=1, , b=2',
    'Negotiate YIIF',
  ])
    assert.equal(credentialListProblem(v), undefined, v);
});

test('two credentials, or a token68 followed by more: refused', () => {
  for (const v of [
    'Bearer a, Bearer b',
    'Bearer a,Bearer b',
    'Bearer a, b',
    'Bearer a,',
    'Bearer abc==, x=1',
    'Bearer abc=, Bearer x',
    'Basic YTpi, Basic Yzpk',
    'Digest username="a", realm="r", Bearer t',
    'Digest username="a", Basic',
    'Bearer, Bearer x',
    'Digest username="unterminated, realm=r',
  ])
    assert.notEqual(credentialListProblem(v), undefined, v);
});
