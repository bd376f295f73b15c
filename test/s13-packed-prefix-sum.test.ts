/**
 * The PACKED prefix reader's sum (storage/packed-prefix.ts): values before the first one
 * wanted are summed without a check per value when the bits bound every partial sum within
 * the scaled limit, exceptions added afterwards; otherwise value by value. Bodies are built
 * here by hand from residuals (not by the writer, which never writes a value past the limit),
 * so partial sums cross the limit before, at and after the values read, with exceptions
 * among the summed residuals. The reference is BigInt arithmetic: a prefix read of [skip,
 * need) of an order 1 or 2 body refuses exactly when a value before `need` is past 2^51, and
 * otherwise gives each value in [skip, need) as the exact integer divided by 10^k. Seeded
 * (the seed is printed; TPD_PACKED_SUM_SEED replays it).
 */
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../storage/codec/bytes.js';
import { ColumnKind } from '../storage/codec/column-kinds.js';
import { DecimalColumns } from '../storage/column-numbers.js';
import { rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';

const SEED = scheduleSeed('TPD_PACKED_SUM_SEED', 's13-packed-prefix-sum');
const LIMIT = 2n ** 51n;

interface Body {
  kind: number;
  bytes: Uint8Array;
  /** Every value as an exact integer (scaled). */
  scaled: bigint[];
  k: number;
}

const zig = (v: bigint): bigint => (v >= 0n ? 2n * v : -2n * v - 1n);

/** A PACKED body of order 1 or 2 from its first values and residuals; residuals wider than `width` bits go as exceptions. */
function body(order: 1 | 2, s0: bigint, d0: bigint, resid: bigint[], width: number, k: number): Body {
  const w = new ByteWriter(64);
  w.svar(Number(s0));
  if (order === 2) w.svar(Number(d0));
  const zs = resid.map(zig);
  const unit = 1n << BigInt(width);
  const ex = zs.map((z, j) => ({ j, high: z / unit })).filter((e) => e.high > 0n);
  w.u8(width | (ex.length > 0 ? 0x80 : 0));
  if (ex.length > 0) w.uvar(ex.length);
  // Bits high first, value after value, the last byte padded with zeros.
  let acc = 0n;
  let bits = 0;
  for (const z of zs) {
    acc = (acc << BigInt(width)) | (z % unit);
    bits += width;
    while (bits >= 8) {
      bits -= 8;
      w.u8(Number((acc >> BigInt(bits)) & 0xffn));
    }
  }
  if (bits > 0) w.u8(Number((acc << BigInt(8 - bits)) & 0xffn));
  let at = -1;
  for (const e of ex) {
    w.uvar(e.j - at - 1);
    w.uvar(Number(e.high));
    at = e.j;
  }
  const scaled: bigint[] = [s0];
  if (order === 2) scaled.push(s0 + d0);
  let prev = scaled[scaled.length - 1] as bigint;
  let delta = d0;
  for (const v of resid) {
    if (order === 1) prev += v;
    else prev += delta += v;
    scaled.push(prev);
  }
  return { kind: ColumnKind.PACKED + order * 16 + k, bytes: w.finish().slice(), scaled, k };
}

/** Residuals of about `bits` bits, now and then a much larger one (an exception), steered to cross the limit or not. */
function residuals(r: () => number, m: number, bits: number, drift: bigint): bigint[] {
  const out: bigint[] = [];
  for (let j = 0; j < m; j++) {
    let v = BigInt(Math.floor((r() - 0.5) * 2 ** bits)) + drift;
    if (r() < 0.08) v += BigInt(Math.floor((r() - 0.5) * 2 ** 40));
    out.push(v);
  }
  return out;
}

describe('PACKED values read after a sum of the ones before them', () => {
  it('are exact, and refused exactly when a value before the last one read passes the limit', () => {
    const r = rng(SEED);
    const d = new DecimalColumns();
    let refused = 0;
    let read = 0;
    let fastBodies = 0;
    for (let t = 0; t < 400; t++) {
      const order = r() < 0.5 ? 1 : 2;
      const m = 8 + Math.floor(r() * 90);
      // Widths to 24 (the prefix reader's own; wider ones go through the codec's reader).
      const width = 1 + Math.floor(r() * (t % 2 === 0 ? 12 : 24));
      const near = r() < 0.6;
      const s0 = near ? (r() < 0.5 ? 1n : -1n) * (LIMIT - BigInt(Math.floor(r() * 2 ** 20))) : BigInt(Math.floor((r() - 0.5) * 2 ** 30));
      const d0 = order === 2 ? BigInt(Math.floor((r() - 0.5) * 2 ** 10)) : 0n;
      const drift = near ? BigInt(Math.floor((r() - 0.5) * 2 ** 16)) : 0n;
      const b = body(order, s0, d0, residuals(r, m, width, drift), width, Math.floor(r() * 4));
      // Values past 2^53 cannot be written as scaled numbers: such bodies are not what a damaged file holds either way.
      if (b.scaled.some((s) => s > 2n ** 52n || s < -(2n ** 52n))) continue;
      const n = b.scaled.length;
      const divisor = 10 ** b.k;
      // Every third body has bytes after it (the next column's), which a read of its bits
      // may look at but must not take.
      const tail = t % 3 === 0 ? Uint8Array.from({ length: 1 + Math.floor(r() * 6) }, () => Math.floor(r() * 256)) : new Uint8Array(0);
      const bytes = new Uint8Array(b.bytes.length + tail.length);
      bytes.set(b.bytes);
      bytes.set(tail, b.bytes.length);
      if (b.scaled.every((s) => s <= LIMIT && s >= -LIMIT)) fastBodies++;
      for (let need = order; need <= n; need++) {
        for (const skip of [need - 1, need - 2, Math.floor(r() * need)].filter((s) => s >= 0)) {
          const got = new Float64Array(n + 2).fill(-1);
          const pr = new ByteReader(bytes);
          const past = b.scaled.slice(0, need).some((s) => s > LIMIT || s < -LIMIT);
          const what = `seed ${SEED} body ${t} order ${order} width ${width} n ${n} values [${skip}, ${need})`;
          if (past) {
            expect(() => d.readPrefix(pr, b.kind, got, 1, n, need, skip), what).toThrow(expect.objectContaining({ code: 'TPD_CORRUPT_BLOCK' }) as Error);
            refused++;
            continue;
          }
          expect(d.readPrefix(pr, b.kind, got, 1, n, need, skip), what).toBe(true);
          expect(pr.pos, what).toBe(b.bytes.length);
          for (let i = skip; i < need; i++) expect(got[1 + i], `${what}: value ${i}`).toBe(Number(b.scaled[i] as bigint) / divisor);
          expect(got[0]).toBe(-1);
          expect(got[n + 1]).toBe(-1);
          read++;
        }
      }
    }
    // Both outcomes came up many times, and bodies wholly within the limit (where the sum goes without checks).
    expect(refused).toBeGreaterThan(500);
    expect(read).toBeGreaterThan(2000);
    expect(fastBodies).toBeGreaterThan(50);
  });
});
