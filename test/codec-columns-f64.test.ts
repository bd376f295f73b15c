/**
 * decodeColumnF64 (columns straight into a Float64Array) against decodeColumn, on seeded
 * hostile columns (every kind of NaN bit pattern, Prometheus' stale marker, -0, ±Inf,
 * subnormals, decimals, integers) and on damaged ones: the same bits, the same end
 * position, the same refusals. And the sidecar's LZ4 block decoder against lz4-napi, and on
 * hostile blocks (never writes past the length it was given).
 */
import { describe, expect, it } from 'vitest';
import { compressSync } from 'lz4-napi';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { decodeColumn, decodeColumnF64, encodeColumn } from '../storage/codec/columns.js';
import { lz4DecodeInto } from '../storage/codec/lz4-block.js';

/** The sidecar's chunks are decoded by the codec's LZ4 decoder, its errors naming the sidecar. */
const lz4DecodeBlock = (src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number): void => lz4DecodeInto(src, from, to, dst, rawBytes, 'series sidecar');
import { isTapedeckError } from '../protocol/errors.js';
import { valueArray, type Value } from '../protocol/value.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}
function bitsOf(v: unknown): string {
  if (typeof v !== 'number') return `not a number: ${String(v)}`;
  f64[0] = v;
  return (u64[0] as bigint).toString(16);
}

/** NaNs of every shape: quiet and signalling, both signs, low, high and random payloads; the stale marker. */
function nanPatterns(rand: () => number): bigint[] {
  const out: bigint[] = [];
  for (const sign of [0n, 1n << 63n]) {
    for (const quiet of [0n, 1n << 51n]) {
      for (const payload of [1n, 2n, 0x1234n, (1n << 50n) | 1n, (1n << 51n) - 1n, BigInt(Math.floor(rand() * 2 ** 30)) << 20n | 1n]) {
        const p = quiet === 0n ? payload & ((1n << 51n) - 1n) : payload & ((1n << 51n) - 1n);
        if (quiet === 0n && p === 0n) continue; // that is Infinity
        out.push(sign | (0x7ffn << 52n) | quiet | p);
      }
    }
  }
  out.push(0x7ff0000000000002n, 0x7ff8000000000000n, 0xfff8000000000000n, 0x7fffffffffffffffn, 0xffffffffffffffffn, 0x7ff0000000000001n);
  return out;
}

/** A column of one shape: hostile floats, decimals, integers, counters, constants. */
function column(rand: () => number, shape: number, nans: bigint[]): number[] {
  // Decimal columns of one or two values are DECIMAL_K (the writer plans PACKED from three):
  // a tenth of them, so that every seed's load holds some (seed 495250 held none).
  const n = shape === 1 && rand() < 0.1 ? 1 + Math.floor(rand() * 2) : 1 + Math.floor(rand() * 300);
  const out: number[] = [];
  let acc = Math.floor(rand() * 1e6);
  for (let i = 0; i < n; i++) {
    if (shape === 0) {
      const r = rand();
      if (r < 0.3) out.push(fromBits(nans[Math.floor(rand() * nans.length)] as bigint));
      else if (r < 0.4) out.push(-0);
      else if (r < 0.5) out.push(rand() < 0.5 ? Infinity : -Infinity);
      else if (r < 0.6) out.push(fromBits(BigInt(Math.floor(rand() * 2 ** 40)) | (rand() < 0.5 ? 0n : 1n << 63n))); // subnormals
      else if (r < 0.65) out.push(5e-324);
      else if (r < 0.7) out.push(Number.MAX_VALUE * (rand() < 0.5 ? 1 : -1));
      else out.push(rand() * 1e9 - 5e8);
    } else if (shape === 1) out.push(Math.round(rand() * 1e6) / 100); // DECIMAL / PACKED
    else if (shape === 2) out.push((acc += Math.floor(rand() * 1000))); // counters
    else if (shape === 3) out.push(42); // constant
    else if (shape === 4) out.push(fromBits(0x7ff0000000000002n)); // all stale
    else out.push(rand() < 0.5 ? Math.floor(rand() * 2 ** 52) * (rand() < 0.5 ? -1 : 1) : rand()); // FLOAT64-ish
  }
  return out;
}

function encode(values: readonly number[]): Uint8Array {
  const vals = valueArray(values.length);
  values.forEach((v, i) => (vals[i] = v));
  const w = new ByteWriter(64);
  w.u8(0xee); // a byte before the column, so that offsets are not 0
  encodeColumn(w, vals, Uint32Array.from(values.keys()), 0, values.length);
  w.u8(0xdd); // and one after
  return w.finish();
}

type Outcome = { ok: true; bits: string[]; pos: number } | { ok: false; code: string };

function viaGeneric(buf: Uint8Array, n: number): Outcome {
  const out = valueArray(n + 2);
  const r = new ByteReader(buf, 1);
  try {
    decodeColumn(r, out, 1, n + 1);
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    return { ok: false, code: err.code };
  }
  const bits = out.slice(1, n + 1).map(bitsOf);
  // A column holding anything but numbers is refused by the typed variant.
  if (bits.some((b) => b.startsWith('not a number'))) return { ok: false, code: 'TPD_CORRUPT_BLOCK' };
  return { ok: true, bits, pos: r.pos };
}

function viaTyped(buf: Uint8Array, n: number): Outcome {
  const out = new Float64Array(n + 2).fill(7);
  const r = new ByteReader(buf, 1);
  try {
    decodeColumnF64(r, out, 1, n + 1);
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
    return { ok: false, code: err.code };
  }
  // Nothing written outside [from, to).
  expect(out[0]).toBe(7);
  expect(out[n + 1]).toBe(7);
  return { ok: true, bits: [...out.subarray(1, n + 1)].map(bitsOf), pos: r.pos };
}

describe('decodeColumnF64', () => {
  it('gives decodeColumn\'s exact bits and end position on hostile columns of every kind, and its refusals on damaged ones', () => {
    const seed = scheduleSeed('COLUMNS_F64_SEED', 'columns-f64');
    const rand = rng(seed);
    const nans = nanPatterns(rand);
    const kinds = new Set<number>();
    let refused = 0;
    for (let round = 0; round < 600; round++) {
      const values = column(rand, round % 6, nans);
      const buf = encode(values);
      kinds.add(buf[1] as number);
      const want = viaGeneric(buf, values.length);
      expect(want.ok, `round ${round} (seed ${seed})`).toBe(true);
      if (want.ok) expect(want.bits, `round ${round}: the codec round-trips (seed ${seed})`).toEqual(values.map(bitsOf));
      expect(viaTyped(buf, values.length), `round ${round} (seed ${seed})`).toEqual(want);
      // Damaged copies: a flipped bit, a cut, a wrong count.
      for (let d = 0; d < 6; d++) {
        const bad = Uint8Array.from(buf);
        let n = values.length;
        let cut = bad;
        if (d < 4) {
          const at = 1 + Math.floor(rand() * (bad.length - 2));
          bad[at] = (bad[at] as number) ^ (1 << Math.floor(rand() * 8));
        } else if (d === 4) {
          cut = bad.subarray(0, 1 + Math.floor(rand() * (bad.length - 1)));
        } else {
          n = Math.max(0, n + (rand() < 0.5 ? -1 : 1) * (1 + Math.floor(rand() * 3)));
        }
        const g = viaGeneric(cut, n);
        if (!g.ok) refused++;
        expect(viaTyped(cut, n), `round ${round} damage ${d} (seed ${seed})`).toEqual(g);
      }
    }
    // The load covered every kind the writer picks for numbers, and damage was refused often.
    expect([...kinds].map((k) => (k >= 0x40 ? 'PACKED' : k >= 0x10 ? 'DECIMAL_K' : k === 3 ? 'XOR' : k === 2 ? 'FLOAT64' : String(k))).sort()).toEqual(expect.arrayContaining(['DECIMAL_K', 'FLOAT64', 'PACKED', 'XOR']));
    expect(refused).toBeGreaterThan(100);
  });

  it('reads a MSGPACK column of numbers, and refuses one holding other values', () => {
    const w = new ByteWriter(64);
    const vals: Value[] = [1.5, null, fromBits(0x7ff0000000000002n)];
    encodeColumn(w, vals, Uint32Array.of(0, 2), 0, 2); // numbers only: not MSGPACK
    const mixed = new ByteWriter(64);
    encodeColumn(mixed, vals, Uint32Array.of(0, 1, 2), 0, 3);
    expect(mixed.buf[0]).toBe(0);
    expect(() => decodeColumnF64(new ByteReader(mixed.finish()), new Float64Array(3), 0, 3)).toThrow(/not a number/);
  });
});

describe('sidecar LZ4 block decoder', () => {
  it('decodes what lz4-napi compresses, and refuses hostile blocks without writing past the length given', () => {
    const seed = scheduleSeed('LZ4_SEED', 'lz4-block');
    const rand = rng(seed);
    for (let round = 0; round < 300; round++) {
      const n = Math.floor(rand() * 3000);
      const raw = new Uint8Array(n);
      const period = 1 + Math.floor(rand() * 40);
      for (let i = 0; i < n; i++) raw[i] = rand() < 0.2 ? Math.floor(rand() * 256) : i >= period ? (raw[i - period] as number) : Math.floor(rand() * 8);
      const c = compressSync(Buffer.from(raw));
      expect(c.readUInt32LE(0)).toBe(n);
      const out = new Uint8Array(n + 16).fill(0xaa);
      lz4DecodeBlock(c, 4, c.length, out, n);
      expect(Buffer.from(out.subarray(0, n)).equals(Buffer.from(raw)), `round ${round} (seed ${seed})`).toBe(true);
      // Damaged: flipped bytes, cuts, a wrong length. Either refused, or exactly `length` bytes written.
      for (let d = 0; d < 8; d++) {
        const bad = Buffer.from(c);
        let length = n;
        let end = bad.length;
        if (d < 5 && bad.length > 4) {
          const at = 4 + Math.floor(rand() * (bad.length - 4));
          bad[at] = (bad[at] as number) ^ (1 << Math.floor(rand() * 8));
        } else if (d < 7) end = 4 + Math.floor(rand() * (bad.length - 4));
        else length = Math.max(0, n + (rand() < 0.5 ? -1 : 1));
        const dst = new Uint8Array(length + 16).fill(0xaa);
        try {
          lz4DecodeBlock(bad, 4, end, dst, length);
        } catch (err) {
          expect(isTapedeckError(err) && err.code === 'TPD_CORRUPT_BLOCK', `round ${round} damage ${d}: ${String(err)}`).toBe(true);
        }
        expect(dst.subarray(length).every((b) => b === 0xaa), `round ${round} damage ${d}: nothing past the length (seed ${seed})`).toBe(true);
      }
    }
    // A length larger than the buffer given is refused before any byte is written.
    expect(() => lz4DecodeBlock(Uint8Array.of(0x10, 1), 0, 2, new Uint8Array(4), 1 << 30)).toThrow(/larger than its buffer/);
  });
});
