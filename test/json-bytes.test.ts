/**
 * JSON written straight to bytes (protocol/value-json-bytes.ts, and the replay path's JSON
 * frames, protocol/frames.ts encodeJsonRawFrameBytes) is the UTF-8 of the text form
 * (valueToJsonText, encodeJsonRawFrame): seeded hostile values, numbers of every shape the
 * digit writer takes or refuses (decimals of one and two places, their neighbours, integers
 * at the int32 and 15-digit edges), filters and empty batches.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeJsonRawFrame, encodeJsonRawFrameBytes } from '../protocol/frames.js';
import type { Value } from '../protocol/value.js';
import { JsonBytesWriter } from '../protocol/value-json-bytes.js';
import { valueToJsonText } from '../protocol/value-json.js';
import { hostileNumber, hostilePath, hostileString, hostileValue, propertySeed } from './helpers/values.js';

/** Decimals as recorded (k / 10^d), the doubles either side of them, and integers at the edges. */
const decimalNumber = fc.oneof(
  fc.tuple(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(1, 10, 100, 1000)).map(([k, d]) => k / d),
  fc.tuple(fc.double({ min: -1e16, max: 1e16, noNaN: true }), fc.constantFrom(10, 100)).map(([x, d]) => Math.round(x) / d),
  fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.constantFrom(10, 100), fc.constantFrom(-1, 1)).map(([k, d, s]) => nextAfter(k / d, s)),
  fc.constantFrom(0.1, 0.2, 0.3, 0.05, -0.05, 0.01, -0.01, 0.5, 1e-7, 1e21, 1e15, 1e15 - 1, 99999999999999.9, 999999999999999.9, 9999999999999.99, 2 ** 31, -(2 ** 31), 2 ** 31 - 1, -(2 ** 31) - 1, 2 ** 53, 2 ** 53 - 1, 4294967295.5, 0.1 + 0.2, 1.005, 2.675, 1e8, 1e8 - 1, 1e8 + 1, -1e8, 1e6, 1e7 + 0.5, 100000000.5, 1000000000.01, 1234567890123.45, 12345678901234.5, 9007199254740.99),
  // Integers and decimals across the 10^8 split of the digit writer.
  fc.tuple(fc.integer({ min: 0, max: 2 ** 21 }), fc.integer({ min: 0, max: 99_999_999 }), fc.constantFrom(1, 10, 100), fc.constantFrom(-1, 1)).map(([hi, lo, d, s]) => (s * (hi * 1e8 + lo)) / d),
);

/** The double next to x towards +∞ (dir 1) or -∞ (dir -1). */
function nextAfter(x: number, dir: number): number {
  const f = new Float64Array([x]);
  const u = new BigInt64Array(f.buffer);
  if (x === 0) return dir * 5e-324;
  u[0] = (u[0] as bigint) + ((x > 0) === (dir > 0) ? 1n : -1n);
  return f[0] as number;
}

const anyValue = fc.oneof(hostileValue, hostileNumber, decimalNumber, decimalNumber, hostileString);

function bytesOf(w: JsonBytesWriter, v: Value): Buffer {
  w.reset();
  w.value(v);
  return Buffer.from(w.take());
}

describe('JSON written to bytes', () => {
  it('gives the UTF-8 of valueToJsonText for every hostile value and number', () => {
    const seed = propertySeed('json bytes values');
    const w = new JsonBytesWriter();
    fc.assert(
      fc.property(anyValue, (v) => {
        expect(bytesOf(w, v).toString('latin1')).toBe(Buffer.from(valueToJsonText(v)).toString('latin1'));
      }),
      { seed, numRuns: 20_000 },
    );
  });

  it('replay frames: the bytes of the text frame, filtered or not, one batch or several', () => {
    const seed = propertySeed('json bytes frames');
    const w = new JsonBytesWriter();
    fc.assert(
      fc.property(
        fc.uniqueArray(hostilePath, { minLength: 1, maxLength: 12 }),
        fc.array(fc.tuple(fc.nat(), anyValue), { maxLength: 30 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (paths, us, cuts, filtered) => {
          const ids = Uint32Array.from(us.map((u) => u[0] % paths.length));
          const values = us.map((u) => u[1]);
          const views = cuts.map(([a, b, ts]) => ({ ts, ids, values, from: Math.min(a % (us.length + 1), b % (us.length + 1)), to: Math.max(a % (us.length + 1), b % (us.length + 1)) }));
          const match = filtered ? (id: number) => id % 3 !== 1 : undefined;
          for (const vs of [views, views.slice(0, 1)]) {
            expect(Buffer.from(encodeJsonRawFrameBytes(w, vs, paths, match)).equals(Buffer.from(encodeJsonRawFrame(vs, paths, match)))).toBe(true);
          }
        },
      ),
      { seed, numRuns: 2000 },
    );
  });

  it('grows its buffer mid-frame and still writes the text frame\'s bytes', () => {
    const paths = Array.from({ length: 300 }, (_, i) => `/fabric/sw-${i}/métrique-${'x'.repeat(i % 40)}`);
    const n = 20_000;
    const ids = new Uint32Array(n);
    const values: Value[] = [];
    for (let i = 0; i < n; i++) {
      ids[i] = (i * 7919) % paths.length;
      values.push(i % 9 === 0 ? 'é'.repeat(i % 70) : i % 4 === 0 ? i : i % 4 === 1 ? (i % 4000) / 10 : i % 4 === 2 ? -(i % 500) / 100 : i / 7);
    }
    const views = [{ ts: 1_763_000_000_000_000, ids, values, from: 0, to: n }];
    const got = encodeJsonRawFrameBytes(new JsonBytesWriter(), views, paths, undefined);
    expect(got.length).toBeGreaterThan(64 * 1024);
    expect(Buffer.from(got).equals(Buffer.from(encodeJsonRawFrame(views, paths, undefined)))).toBe(true);
  });
});
