/**
 * Hostile values for property tests (fast-check): every JSON type nested, `__proto__` and
 * `constructor` keys, lone surrogates, tag look-alikes, NaN, ±Infinity, -0, integers beyond
 * 2^53, bytes; and `sameValue`, the exact equality every codec must keep.
 */
import fc from 'fast-check';
import { isWellFormed, setOwn, type Update, type Value } from '../../protocol/value.js';
import { numberBits } from './nan.js';

const char = (c: number): string => String.fromCharCode(c);

/** Strings with lone surrogates, line separators, NUL, quotes and look-alikes of tags and numbers. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.string({ unit: fc.oneof(fc.integer({ min: 0, max: 0xffff }).map(char), fc.integer({ min: 0xd800, max: 0xdfff }).map(char), fc.constantFrom('a', 'é', '𝄞', '"', '\\', '\u2028', '\0')), maxLength: 12 }),
  fc.constantFrom('', 'NaN', 'Infinity', '-0', '1', 'null', '\ud800', '\udfff', 'a\ud800b', '\udc00\ud800', '{"$num":"NaN"}', '$bigint', 'x'.repeat(100) + '\ud83d'),
);

const KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '$num', '$bigint', '$bytes', '$obj', '$', '$x', '', '0', '10', 'a', 'a/b', '\ud800', 'é'];
export const hostileKey: fc.Arbitrary<string> = fc.oneof(fc.constantFrom(...KEYS), hostileString);

export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 60, 1e21, 1e300, 5e-324, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 32, 2 ** 32 + 1, -(2 ** 31) - 1, 0.1),
);

/** Integers a number cannot hold exactly: a bigint in the value model (|n| >= 2^53). */
export const hostileBigint: fc.Arbitrary<bigint> = fc.oneof(
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n }),
  fc.bigInt({ min: -(2n ** 64n), max: -(2n ** 53n) }),
  fc.bigInt({ min: 2n ** 64n, max: 2n ** 200n }),
  fc.bigInt({ min: -(2n ** 200n), max: -(2n ** 64n) }),
  fc.constantFrom(2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 64n - 1n, 2n ** 64n),
);

export const hostileBytes: fc.Arbitrary<Uint8Array> = fc.uint8Array({ maxLength: 40 }).map((b) => Uint8Array.from(b));

function objectOf(entries: Array<[string, Value]>): Value {
  const o: Record<string, Value> = {};
  for (const [k, v] of entries) setOwn(o, k, v);
  return o;
}

/** A user object of the tag shape: one key starting with `$`, or the exact look of a tag. */
function tagLookAlike(inner: fc.Arbitrary<Value>): fc.Arbitrary<Value> {
  return fc.oneof(
    fc.tuple(fc.constantFrom('$num', '$bigint', '$bytes', '$obj', '$', '$x', '$$'), inner).map(([k, v]) => objectOf([[k, v]])),
    fc.constantFrom<Value>({ $num: 'NaN' }, { $num: '-0' }, { $bigint: '1' }, { $bigint: '99999999999999999999' }, { $bytes: 'AAA=' }, { $obj: {} }, { $obj: { $num: 'NaN' } }),
  );
}

export const hostileValue: fc.Arbitrary<Value> = fc.letrec<{ value: Value }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    hostileNumber,
    hostileBigint,
    hostileString,
    hostileBytes,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.array(fc.tuple(hostileKey, tie('value')), { maxLength: 4 }).map(objectOf),
    tagLookAlike(tie('value')),
  ),
})).value;

/** Valid paths: `/`-separated well-formed segments, unicode included. */
export const hostilePath: fc.Arbitrary<string> = fc
  .array(fc.oneof(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', '$num', 'a b', 'é', '𝄞')), { minLength: 1, maxLength: 3 })
  .map((s) => '/' + s.join('/').replace(/\0/g, '_'))
  .filter((p) => isWellFormed(p));

/** A batch's updates: distinct paths, hostile values. */
export const hostileUpdates: fc.Arbitrary<Update[]> = fc.uniqueArray(fc.tuple(hostilePath, hostileValue), { minLength: 1, maxLength: 6, selector: (u) => u[0] });

/** An object of these entries, each an own property (`__proto__` a key like any other). */
export function obj(entries: Array<[string, Value]>): Value {
  const o: Record<string, Value> = {};
  for (const [k, v] of entries) setOwn(o, k, v);
  return o;
}

/** Where `got` differs from `want` in the bits of a number (NaN payloads, -0) inside arrays and objects; for outputs whose whole way is binary. */
export function bitsDiff(want: Value, got: unknown, at = ''): string | undefined {
  if (typeof want === 'number') return numberBits(want) === numberBits(got) ? undefined : `${at || 'value'}: bits ${numberBits(want)} became ${numberBits(got)}`;
  if (Array.isArray(want)) {
    for (let i = 0; i < want.length; i++) {
      const d = bitsDiff(want[i] as Value, (got as unknown[])[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (want !== null && typeof want === 'object' && !(want instanceof Uint8Array)) {
    for (const k of Object.keys(want)) {
      const d = bitsDiff(want[k] as Value, (got as Record<string, unknown>)[k], `${at}.${k}`);
      if (d) return d;
    }
  }
  return undefined;
}

/**
 * Where `got` differs from `want` (undefined when identical): Object.is for numbers, bytes
 * equal, own keys in the same order, plain objects.
 */
export function valueDiff(want: Value, got: unknown, at = ''): string | undefined {
  const here = at || 'value';
  if (typeof want === 'number') return typeof got === 'number' && Object.is(want, got) ? undefined : `${here}: want ${describe(want)}, got ${describe(got)}`;
  if (typeof want !== 'object' || want === null) return want === got ? undefined : `${here}: want ${describe(want)}, got ${describe(got)}`;
  if (want instanceof Uint8Array) {
    if (!(got instanceof Uint8Array)) return `${here}: want bytes, got ${describe(got)}`;
    return Buffer.from(want).equals(Buffer.from(got)) ? undefined : `${here}: bytes differ`;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return `${here}: want array of ${want.length}, got ${describe(got)}`;
    for (let i = 0; i < want.length; i++) {
      const d = valueDiff(want[i] as Value, got[i], `${at}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (got === null || typeof got !== 'object' || Array.isArray(got) || got instanceof Uint8Array) return `${here}: want object, got ${describe(got)}`;
  if (Object.getPrototypeOf(got) !== Object.prototype) return `${here}: not a plain object (prototype replaced)`;
  const wk = Object.keys(want);
  const gk = Object.keys(got);
  if (wk.join('\u0001') !== gk.join('\u0001')) return `${here}: keys ${JSON.stringify(wk)} became ${JSON.stringify(gk)}`;
  for (const k of wk) {
    const d = valueDiff(want[k] as Value, (got as Record<string, unknown>)[k], `${at}.${k}`);
    if (d) return d;
  }
  return undefined;
}

function describe(v: unknown): string {
  if (typeof v === 'number') return Object.is(v, -0) ? '-0' : String(v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (v instanceof Uint8Array) return 'bytes';
  return Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v;
}

/** The seed fast-check runs with: FC_SEED from the environment, else a fresh one; printed so a failure can be replayed. */
export function propertySeed(name: string): number {
  const seed = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
  console.log(`${name}: fast-check seed ${seed} (replay with FC_SEED=${seed})`);
  return seed;
}

const exactBits = new Float64Array(1);
/** A value by its exact form, for toEqual: numbers by their bits (NaN payloads, -0), others as they are. */
export function exactValue(v: Value): unknown {
  if (typeof v !== 'number') return v;
  exactBits[0] = v;
  return `f64:${new BigUint64Array(exactBits.buffer)[0]?.toString(16)}`;
}
