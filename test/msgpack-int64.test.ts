/**
 * The msgpack reader's uint64 and int64 (protocol/msgpack-reader.ts int64): the number from
 * the two 32-bit halves where it is a safe integer, a bigint past ±(2^53 - 1), exactly as
 * canonicalInteger of the 64-bit value gives them, at every edge (2^32, 2^53, 2^63, 2^64, and
 * their negatives) and on seeded random bit patterns. Seeded; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { decodeMsgpack } from '../protocol/value-msgpack.js';
import { isTapedeckError } from '../protocol/errors.js';
import { canonicalInteger } from '../protocol/value.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

function encoded(tag: 0xcf | 0xd3, x: bigint): Uint8Array {
  const b = new Uint8Array(9);
  b[0] = tag;
  const v = new DataView(b.buffer);
  if (tag === 0xcf) v.setBigUint64(1, x);
  else v.setBigInt64(1, x);
  return b;
}

const show = (v: unknown): string => `${typeof v}:${String(v)}`;

describe('msgpack uint64 and int64', () => {
  it('read as canonicalInteger gives them, at the edges and on random bits', () => {
    const edges: bigint[] = [];
    for (const e of [0n, 1n << 31n, 1n << 32n, 1n << 52n, 1n << 53n, 1n << 62n, 1n << 63n]) for (const d of [-2n, -1n, 0n, 1n, 2n]) edges.push(e + d);
    const r = rng(scheduleSeed('MSGPACK_INT64_SEED', 'msgpack int64'));
    const random: bigint[] = [];
    for (let i = 0; i < 20_000; i++) {
      const hi = BigInt(Math.floor(r() * 2 ** 32)) >> BigInt(Math.floor(r() * 33));
      random.push((hi << 32n) | BigInt(Math.floor(r() * 2 ** 32)));
    }
    let numbers = 0;
    let bigints = 0;
    for (const x of [...edges, ...random]) {
      const u = BigInt.asUintN(64, x);
      const s = BigInt.asIntN(64, x);
      const gotU = decodeMsgpack(encoded(0xcf, u));
      const gotS = decodeMsgpack(encoded(0xd3, s));
      expect(show(gotU), `uint64 ${u}`).toBe(show(canonicalInteger(u)));
      expect(show(gotS), `int64 ${s}`).toBe(show(canonicalInteger(s)));
      for (const g of [gotU, gotS]) {
        if (typeof g === 'number') numbers++;
        else bigints++;
      }
    }
    // Both ways are taken, many times.
    expect(numbers).toBeGreaterThan(1000);
    expect(bigints).toBeGreaterThan(1000);
    // -2^53 is no safe integer: a bigint; -(2^53 - 1) a number.
    expect(show(decodeMsgpack(encoded(0xd3, -(1n << 53n))))).toBe('bigint:-9007199254740992');
    expect(show(decodeMsgpack(encoded(0xd3, -(1n << 53n) + 1n)))).toBe('number:-9007199254740991');
    expect(show(decodeMsgpack(encoded(0xcf, (1n << 53n) - 1n)))).toBe('number:9007199254740991');
    expect(show(decodeMsgpack(encoded(0xcf, 1n << 53n)))).toBe('bigint:9007199254740992');
  });

  it("reads an array's fixints, uint8, uint16 and float64 in place, and refuses them cut short", () => {
    expect(decodeMsgpack(Uint8Array.of(0x94, 0x7f, 0xcc, 0xff, 0xcd, 0x01, 0x02, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0))).toStrictEqual([127, 255, 258, 1.5]);
    for (const cut of [[0x91, 0xcb, 1, 2, 3], [0x92, 0x01, 0xcd, 0x01], [0x92, 0x01, 0xcc]]) {
      let code = '';
      try {
        decodeMsgpack(Uint8Array.from(cut));
      } catch (err) {
        code = isTapedeckError(err) ? err.code : String(err);
      }
      expect(code, cut.join(',')).toBe('TPD_BAD_ARGUMENT');
    }
  });
});
