/**
 * RFC 8785 (JCS) canonicalisation against the RFC's own examples: the §3.2.2 sample and its §3.2.3 text
 * and §3.2.4 UTF-8 bytes, the §3.2.3 sorting example, the Appendix B number table; and what JCS refuses.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CanonicalizationError, canonicalBytes, canonicalize } from '../../../src/audit/canonical.js';

/** An IEEE 754 double from its big-endian hex bit pattern, as Appendix B lists them. */
function double(bits: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${bits}`));
  return view.getFloat64(0);
}

describe('RFC 8785 examples', () => {
  // §3.2.2, as JSON text: the string member escapes every code point it can.
  const sample = String.raw`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`;

  test('§3.2.3: the canonical text of the §3.2.2 sample', () => {
    const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
    assert.equal(canonicalize(JSON.parse(sample)), expected);
  });

  test('§3.2.4: its UTF-8 bytes', () => {
    const hex = `7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72
      75 65 2c 66 61 6c 73 65 5d 2c 22 6e 75 6d 62 65 72 73 22 3a
      5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31
      65 2b 33 30 2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37
      5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24 5c 75 30 30
      30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d`;
    assert.equal(canonicalBytes(JSON.parse(sample)).toString('hex'), hex.replace(/\s+/g, ''));
  });

  test('§3.2.3: properties sorted by UTF-16 code units', () => {
    const input = String.raw`{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`;
    // The RFC's resulting order: \r, 1, U+0080, U+00F6, U+20AC, U+1F600 (surrogates D83D DE00), U+FB33.
    const expected =
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
      '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}';
    assert.equal(canonicalize(JSON.parse(input)), expected);
  });

  test('Appendix B: numbers as ECMAScript writes them', () => {
    const table: [string, string][] = [
      ['0000000000000000', '0'],
      ['8000000000000000', '0'],
      ['0000000000000001', '5e-324'],
      ['8000000000000001', '-5e-324'],
      ['7fefffffffffffff', '1.7976931348623157e+308'],
      ['ffefffffffffffff', '-1.7976931348623157e+308'],
      ['4340000000000000', '9007199254740992'],
      ['c340000000000000', '-9007199254740992'],
      ['4430000000000000', '295147905179352830000'],
      ['44b52d02c7e14af5', '9.999999999999997e+22'],
      ['44b52d02c7e14af6', '1e+23'],
      ['44b52d02c7e14af7', '1.0000000000000001e+23'],
      ['444b1ae4d6e2ef4e', '999999999999999700000'],
      ['444b1ae4d6e2ef4f', '999999999999999900000'],
      ['444b1ae4d6e2ef50', '1e+21'],
      ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
      ['3eb0c6f7a0b5ed8d', '0.000001'],
      ['41b3de4355555553', '333333333.3333332'],
      ['41b3de4355555554', '333333333.33333325'],
      ['41b3de4355555555', '333333333.3333333'],
      ['41b3de4355555556', '333333333.3333334'],
      ['41b3de4355555557', '333333333.33333343'],
      ['becbf647612f3696', '-0.0000033333333333333333'],
      ['43143ff3c1cb0959', '1424953923781206.2'],
    ];
    for (const [bits, text] of table) {
      assert.equal(canonicalize(double(bits)), text, bits);
      assert.equal(canonicalize({ n: [double(bits)] }), `{"n":[${text}]}`, bits);
    }
  });

  test('Appendix B: NaN and Infinity have no JSON form', () => {
    for (const bits of ['7fffffffffffffff', '7ff0000000000000']) {
      assert.throws(() => canonicalize({ n: double(bits) }), CanonicalizationError);
    }
  });
});

describe('what JCS refuses', () => {
  class Event {
    type = 'x';
  }
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const sparse: number[] = [];
  sparse[0] = 1;
  sparse[2] = 3;
  const cases: [string, unknown, string][] = [
    ['NaN', { n: Number.NaN }, '$.n'],
    ['-Infinity', [Number.NEGATIVE_INFINITY], '$[0]'],
    ['undefined at the top', undefined, '$'],
    ['undefined in an object', { a: { b: undefined } }, '$.a.b'],
    ['undefined in an array', [1, undefined], '$[1]'],
    ['a sparse array', sparse, '$[1]'],
    ['a function', { f: () => 1 }, '$.f'],
    ['a toJSON method', { toJSON: () => 'x' }, '$.toJSON'],
    ['a symbol value', { s: Symbol('s') }, '$.s'],
    ['a symbol key', { [Symbol('s')]: 1 }, '$'],
    ['a bigint', { n: 1n }, '$.n'],
    ['a Date', { at: new Date(0) }, '$.at'],
    ['a Map', new Map(), '$'],
    ['a Buffer', { b: Buffer.from('x') }, '$.b'],
    ['a class instance', { e: new Event() }, '$.e'],
    ['a cycle', cyclic, '$.self'],
    ['a lone high surrogate', { s: 'a\ud800b' }, '$.s'],
    ['a lone low surrogate in a key', { '\udc00': 1 }, '$.\udc00'],
  ];
  for (const [name, value, path] of cases) {
    test(name, () => {
      assert.throws(
        () => canonicalize(value),
        (err: unknown) => err instanceof CanonicalizationError && err.path === path,
      );
    });
  }
});

describe('canonical form', () => {
  test('nested objects are sorted at every level, arrays keep their order', () => {
    const entry = { z: [3, 1, { b: 2, a: 1 }], a: { y: true, x: null }, m: 'é' };
    assert.equal(canonicalize(entry), '{"a":{"x":null,"y":true},"m":"é","z":[3,1,{"a":1,"b":2}]}');
  });

  test('the same object shared twice is not a cycle; a null-prototype object is plain', () => {
    const shared = { k: 1 };
    const bare = Object.assign(Object.create(null) as object, { b: 2, a: 1 });
    assert.equal(
      canonicalize({ x: shared, y: shared, z: bare }),
      '{"x":{"k":1},"y":{"k":1},"z":{"a":1,"b":2}}',
    );
  });

  test('controls are escaped minimally, lowercase hex; -0 is 0', () => {
    assert.equal(
      canonicalize('\u0000\u0007\b\t\n\u000b\f\r\u001f "\\/\u007f'),
      '"\\u0000\\u0007\\b\\t\\n\\u000b\\f\\r\\u001f \\"\\\\/\u007f"',
    );
    assert.equal(canonicalize(-0), '0');
  });

  test('member order of the input does not matter', () => {
    assert.equal(canonicalize({ b: 1, a: 2 }), canonicalize({ a: 2, b: 1 }));
  });
});
