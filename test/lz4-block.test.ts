/**
 * The codec's LZ4 block decoder (storage/codec/lz4-block.ts) against lz4-napi, which
 * compresses every block and decompressed them until 2026-12-03: the same bytes on random,
 * compressible, run-heavy and long-literal inputs of every size class, into a buffer larger
 * than the output whose tail must stay untouched. Then seeded damage in every region of a
 * block (token, literal-length bytes, literals, match offset, match-length bytes), cuts,
 * declared lengths off by one, offsets before the output's start: each either refused with
 * TPD_CORRUPT_BLOCK or decoded to exactly the declared length, never a byte past it, and
 * every structural fault refused. And openFrame: with and without a reused PayloadBuffer,
 * the payload's bytes; a frame whose stored LZ4 bytes are damaged (CRC made to match, so
 * the decoder is what sees it) fails with TPD_CORRUPT_BLOCK. The prefix decode (a seek's
 * head): every prefix length of seeded inputs is the full decode's prefix, nothing written
 * past it; on damaged streams it throws the full decode's error or gives the bytes the full
 * decode wrote there, never another error, never a byte past the prefix. Seeded (LZ4_SEED).
 */
import { describe, expect, it } from 'vitest';
import { compressSync, uncompressSync } from 'lz4-napi';
import { isTapedeckError } from '../protocol/errors.js';
import { lz4DecodeInto, lz4DecodePrefixInto } from '../storage/codec/lz4-block.js';
import { BlockType, Codec, encodeFrame, FRAME_HEADER_BYTES, openFrame, PayloadBuffer } from '../storage/codec/frame.js';
import { crc32c } from '../storage/codec/crc.js';
import { lz4DecodeIntoBefore } from './helpers/lz4-block-7710056.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';

const SENTINEL = 0xa5;

/** One of several input shapes: incompressible, periodic with noise, runs, long literals between long matches, varint-like. */
function input(r: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  const shape = Math.floor(r() * 6);
  const period = 1 + Math.floor(r() * (r() < 0.5 ? 8 : 300));
  for (let i = 0; i < n; i++) {
    if (shape === 0) out[i] = Math.floor(r() * 256);
    else if (shape === 1) out[i] = r() < 0.1 ? Math.floor(r() * 256) : i >= period ? (out[i - period] as number) : Math.floor(r() * 256);
    else if (shape === 2) out[i] = Math.floor(i / (1 + Math.floor(r() * 2000))) & 3;
    else if (shape === 3) out[i] = Math.floor(i / 700) % 2 === 0 ? Math.floor(r() * 256) : (out[i - 700] as number);
    else if (shape === 4) out[i] = r() < 0.7 ? 1 + (i % 3) : Math.floor(r() * 256);
    else out[i] = i >= period && r() < 0.95 ? (out[i - period] as number) : Math.floor(r() * 8);
  }
  return out;
}

function sizeOf(r: () => number): number {
  const c = Math.floor(r() * 4);
  return c === 0 ? Math.floor(r() * 40) : c === 1 ? Math.floor(r() * 2000) : c === 2 ? Math.floor(r() * 70_000) : Math.floor(r() * 300_000);
}

/** Decodes into a buffer of `length + 64` sentinel bytes; the error (or undefined) and whether the tail held. */
function decode(block: Uint8Array, from: number, to: number, length: number): { err: unknown; out: Uint8Array; tailKept: boolean } {
  const out = new Uint8Array(length + 64).fill(SENTINEL);
  let err: unknown;
  try {
    lz4DecodeInto(block, from, to, out, length, 'test');
  } catch (e) {
    err = e;
  }
  return { err, out, tailKept: out.subarray(length).every((b) => b === SENTINEL) };
}

/** Byte positions of a block's regions, by walking its sequences (a valid block). */
interface Regions {
  token: number[];
  literalLength: number[];
  literals: number[];
  offset: number[];
  matchLength: number[];
}

function regions(c: Uint8Array, from: number): Regions {
  const g: Regions = { token: [], literalLength: [], literals: [], offset: [], matchLength: [] };
  let s = from;
  for (;;) {
    const token = c[s] as number;
    g.token.push(s++);
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        g.literalLength.push(s);
        b = c[s++] as number;
        lit += b;
      } while (b === 255);
    }
    for (let i = 0; i < lit; i++) g.literals.push(s + i);
    s += lit;
    if (s >= c.length) return g;
    g.offset.push(s, s + 1);
    s += 2;
    if ((token & 15) === 15) {
      let b: number;
      do {
        g.matchLength.push(s);
        b = c[s++] as number;
      } while (b === 255);
    }
  }
}

function corrupt(err: unknown): boolean {
  return isTapedeckError(err) && err.code === 'TPD_CORRUPT_BLOCK';
}

describe('LZ4 block decoder', () => {
  it('decodes what lz4-napi compresses to the same bytes, writing nothing past the length', () => {
    const seed = scheduleSeed('LZ4_SEED', 'lz4 differential');
    const r = rng(seed);
    let bytes = 0;
    for (let round = 0; round < 400; round++) {
      const raw = input(r, sizeOf(r));
      const c = compressSync(Buffer.from(raw));
      const want = uncompressSync(c);
      const { err, out, tailKept } = decode(c, 4, c.length, raw.length);
      expect(err, `round ${round} (LZ4_SEED=${seed})`).toBeUndefined();
      expect(tailKept).toBe(true);
      expect(Buffer.from(out.subarray(0, raw.length)).equals(want), `round ${round} (LZ4_SEED=${seed})`).toBe(true);
      bytes += raw.length;
    }
    expect(bytes).toBeGreaterThan(10_000_000);
  });

  it('refuses damage in every region of a block, or decodes exactly its length; never writes past it', () => {
    const seed = scheduleSeed('LZ4_SEED', 'lz4 damage');
    const r = rng(seed);
    const seen: Record<string, number> = {};
    for (let round = 0; round < 250; round++) {
      const raw = input(r, 1 + Math.floor(r() * 20_000));
      const c = compressSync(Buffer.from(raw));
      const g = regions(c, 4);
      for (const region of Object.keys(g) as Array<keyof Regions>) {
        const at = g[region];
        if (at.length === 0) continue;
        for (let k = 0; k < 4; k++) {
          const bad = Buffer.from(c);
          const p = at[Math.floor(r() * at.length)] as number;
          bad[p] = k === 0 ? 0 : k === 1 ? 255 : (bad[p] as number) ^ (1 << Math.floor(r() * 8));
          const { err, tailKept } = decode(bad, 4, bad.length, raw.length);
          const what = `${region} byte ${p} of round ${round} (LZ4_SEED=${seed})`;
          expect(tailKept, what).toBe(true);
          if (err !== undefined) expect(corrupt(err), `${what}: ${String(err)}`).toBe(true);
          seen[region] = (seen[region] ?? 0) + 1;
        }
      }
      // Cut anywhere: the last sequence's literals are missing or short, always refused.
      const cut = 4 + Math.floor(r() * (c.length - 4));
      const cutDecode = decode(c, 4, cut, raw.length);
      expect(corrupt(cutDecode.err), `cut at ${cut} of round ${round} (LZ4_SEED=${seed})`).toBe(true);
      expect(cutDecode.tailKept).toBe(true);
      // A declared length one short or one long: refused.
      for (const length of [raw.length - 1, raw.length + 1]) {
        if (length < 0) continue;
        const d = decode(c, 4, c.length, length);
        expect(corrupt(d.err), `length ${length} of ${raw.length}, round ${round} (LZ4_SEED=${seed})`).toBe(true);
        expect(d.tailKept).toBe(true);
      }
      // A match offset reaching before the output's start: refused.
      if (g.offset.length > 0) {
        const bad = Buffer.from(c);
        const p = g.offset[0] as number;
        bad[p] = 0xff;
        bad[p + 1] = 0xff;
        const d = decode(bad, 4, bad.length, raw.length);
        if (raw.length < 0xffff) expect(corrupt(d.err), `offset before the start, round ${round} (LZ4_SEED=${seed})`).toBe(true);
        const zero = Buffer.from(c);
        zero[p] = 0;
        zero[p + 1] = 0;
        expect(corrupt(decode(zero, 4, zero.length, raw.length).err), `offset 0, round ${round}`).toBe(true);
      }
    }
    for (const region of ['token', 'literalLength', 'literals', 'offset', 'matchLength']) expect(seen[region] ?? 0, region).toBeGreaterThan(50);
  });

  it('refuses a length larger than its buffer, or a range outside the source, before writing', () => {
    const dst = new Uint8Array(8).fill(SENTINEL);
    expect(() => lz4DecodeInto(Uint8Array.of(0x10, 1), 0, 2, dst, 9, 'x')).toThrow(/larger than its buffer/);
    expect(() => lz4DecodeInto(Uint8Array.of(0x10, 1), 0, 3, dst, 1, 'x')).toThrow(/larger than its buffer/);
    expect(() => lz4DecodeInto(Uint8Array.of(0x10, 1), 2, 1, dst, 1, 'x')).toThrow(/larger than its buffer/);
    expect(dst.every((b) => b === SENTINEL)).toBe(true);
    // An empty block is one token of no literals.
    lz4DecodeInto(Uint8Array.of(0), 0, 1, dst, 0, 'x');
    expect(() => lz4DecodeInto(Uint8Array.of(), 0, 0, dst, 0, 'x')).toThrow(/truncated/);
  });
});

describe('openFrame with LZ4 payloads', () => {
  const meta = { type: BlockType.DELTA, firstTs: 10, lastTs: 20, batches: 3, updates: 9 };

  it('returns the payload bytes with or without a reused buffer; a buffer past its bound is not reused', () => {
    const seed = scheduleSeed('LZ4_SEED', 'openFrame');
    const r = rng(seed);
    const reused = new PayloadBuffer(100_000);
    let lz4 = 0;
    let reusedSeen = 0;
    let held: { view: Uint8Array; copy: Buffer; own: boolean } | undefined;
    for (let round = 0; round < 200; round++) {
      const raw = input(r, 128 + Math.floor(r() * (round % 10 === 0 ? 400_000 : 60_000)));
      const frame = encodeFrame(meta, raw);
      const fresh = openFrame(frame, 'f').raw;
      const viaBuffer = openFrame(frame, 'f', reused).raw;
      expect(Buffer.from(fresh).equals(Buffer.from(raw)), `round ${round} (LZ4_SEED=${seed})`).toBe(true);
      expect(Buffer.from(viaBuffer).equals(Buffer.from(raw)), `round ${round} (LZ4_SEED=${seed})`).toBe(true);
      if (frame[5] !== Codec.LZ4) continue;
      lz4++;
      // A view held from the last LZ4 frame: overwritten when both were in the reused buffer, kept when it had one of its own.
      if (held !== undefined) {
        const same = Buffer.from(held.view).equals(held.copy);
        if (held.own) expect(same, `round ${round}: a payload past the bound is its own (LZ4_SEED=${seed})`).toBe(true);
        else if (raw.length <= 100_000 && !same) reusedSeen++;
      }
      held = { view: viaBuffer, copy: Buffer.from(viaBuffer), own: raw.length > 100_000 };
    }
    expect(lz4).toBeGreaterThan(100);
    expect(reusedSeen).toBeGreaterThan(50);
  });

  it('refuses a declared length no LZ4 block of the stored size can reach, before sizing a buffer from it (CRC matching)', () => {
    const reused = new PayloadBuffer(1 << 20);
    // A run of 64 KiB of one byte compresses to a few hundred bytes: a real frame near the bound decodes.
    const run = new Uint8Array(65_536).fill(7);
    const ok = encodeFrame(meta, run);
    expect(ok[5]).toBe(Codec.LZ4);
    expect(openFrame(ok, 'f').raw).toStrictEqual(run);
    const stored = 5;
    for (const rawBytes of [stored * 255 + 64 + 1, 1 << 20, 64 * 1024 * 1024]) {
      const frame = Uint8Array.from(Buffer.concat([ok.subarray(0, FRAME_HEADER_BYTES), Buffer.alloc(4 + stored)]));
      const v = new DataView(frame.buffer);
      v.setUint32(8, 4 + stored, true);
      v.setUint32(12, rawBytes, true);
      v.setUint32(FRAME_HEADER_BYTES, rawBytes, true);
      v.setUint32(40, crc32c(frame.subarray(FRAME_HEADER_BYTES), crc32c(frame.subarray(0, 40))), true);
      for (const into of [undefined, reused]) {
        expect(() => openFrame(frame, 'blk', into)).toThrow(/blk: LZ4 payload declares/);
      }
    }
  });

  it('fails with TPD_CORRUPT_BLOCK when the stored LZ4 bytes are damaged under a matching CRC', () => {
    const seed = scheduleSeed('LZ4_SEED', 'openFrame damage');
    const r = rng(seed);
    const reused = new PayloadBuffer(1 << 20);
    let refused = 0;
    for (let round = 0; round < 300; round++) {
      const raw = input(r, 200 + Math.floor(r() * 30_000));
      const frame = encodeFrame(meta, raw);
      if (frame[5] !== Codec.LZ4) continue;
      const bad = Uint8Array.from(frame);
      const kind = round % 3;
      let end = bad.length;
      if (kind === 0) {
        // The size prefix (bytes 0..4 of the stored payload) or any block byte.
        const at = FRAME_HEADER_BYTES + (r() < 0.3 ? Math.floor(r() * 4) : Math.floor(r() * (bad.length - FRAME_HEADER_BYTES)));
        bad[at] = (bad[at] as number) ^ (1 << Math.floor(r() * 8));
      } else if (kind === 1) {
        // Cut: stored length shortened in the header.
        end = FRAME_HEADER_BYTES + Math.floor(r() * (bad.length - FRAME_HEADER_BYTES));
        new DataView(bad.buffer).setUint32(8, end - FRAME_HEADER_BYTES, true);
      } else {
        // The declared raw length in the header one off (the prefix left as it was).
        new DataView(bad.buffer).setUint32(12, raw.length + (r() < 0.5 ? -1 : 1), true);
      }
      const frameBad = bad.subarray(0, end);
      new DataView(frameBad.buffer).setUint32(40, crc32c(frameBad.subarray(FRAME_HEADER_BYTES), crc32c(frameBad.subarray(0, 40))), true);
      for (const into of [undefined, reused]) {
        let err: unknown;
        let got: Uint8Array | undefined;
        try {
          got = openFrame(frameBad, 'blk', into).raw;
        } catch (e) {
          err = e;
        }
        if (err === undefined) {
          // Damage to literal bytes decodes (the CRC is what catches it on disk): the declared length, exactly.
          expect(kind, `round ${round} (LZ4_SEED=${seed})`).toBe(0);
          expect(got?.length).toBe(raw.length);
        } else {
          expect(corrupt(err), `round ${round}: ${String(err)} (LZ4_SEED=${seed})`).toBe(true);
          expect(String((err as Error).message)).toMatch(/^blk: /);
          refused++;
        }
      }
    }
    expect(refused).toBeGreaterThan(200);
  });
});

/** decodePrefix into `prefix + 64` sentinel bytes: the error (or undefined), the bytes, whether the tail held. */
function decodePrefix(block: Uint8Array, length: number, prefix: number): { err: unknown; out: Uint8Array; tailKept: boolean } {
  const out = new Uint8Array(prefix + 64).fill(SENTINEL);
  let err: unknown;
  try {
    lz4DecodePrefixInto(block, 4, block.length, out, length, prefix, 'test');
  } catch (e) {
    err = e;
  }
  return { err, out, tailKept: out.subarray(prefix).every((b) => b === SENTINEL) };
}

/** Prefix lengths to try of an output of n bytes: all of them when short, else the first 700, the last 50 and a seeded 150. */
function prefixLengths(r: () => number, n: number): number[] {
  if (n <= 3000) return Array.from({ length: n + 1 }, (_, i) => i);
  const out = Array.from({ length: 700 }, (_, i) => i);
  for (let i = n - 50; i <= n; i++) out.push(i);
  for (let i = 0; i < 150; i++) out.push(Math.floor(r() * n));
  return out;
}

describe('LZ4 prefix decode', () => {
  it('leaves the full decode as it was (7710056): the same bytes and the same errors on seeded and damaged streams', () => {
    const seed = scheduleSeed('LZ4_SEED', 'lz4 full decode unchanged');
    const r = rng(seed);
    const run = (f: typeof lz4DecodeInto, block: Uint8Array, to: number, length: number): { err: string | undefined; out: Buffer } => {
      const out = new Uint8Array(length + 64).fill(SENTINEL);
      let err: string | undefined;
      try {
        f(block, 4, to, out, length, 'w');
      } catch (e) {
        err = `${(e as { code?: string }).code}: ${(e as Error).message}`;
      }
      return { err, out: Buffer.from(out) };
    };
    let compared = 0;
    let refused = 0;
    for (let round = 0; round < 300; round++) {
      const raw = input(r, round % 3 === 0 ? sizeOf(r) : Math.floor(r() * 20_000));
      const c = Uint8Array.from(compressSync(Buffer.from(raw)));
      const cases: Array<{ block: Uint8Array; to: number; length: number }> = [{ block: c, to: c.length, length: raw.length }];
      for (let k = 0; k < 6; k++) {
        const bad = Uint8Array.from(c);
        const p = 4 + Math.floor(r() * (c.length - 4));
        bad[p] = k % 3 === 0 ? 0 : k % 3 === 1 ? 255 : (bad[p] as number) ^ (1 << Math.floor(r() * 8));
        cases.push({ block: bad, to: bad.length, length: raw.length });
      }
      cases.push({ block: c, to: 4 + Math.floor(r() * (c.length - 4)), length: raw.length });
      for (const length of [raw.length - 1, raw.length + 1]) if (length >= 0) cases.push({ block: c, to: c.length, length });
      for (const { block, to, length } of cases) {
        const now = run(lz4DecodeInto, block, to, length);
        const before = run(lz4DecodeIntoBefore, block, to, length);
        const what = `round ${round}, to ${to}, length ${length} (LZ4_SEED=${seed})`;
        expect(now.err, what).toBe(before.err);
        if (!now.out.equals(before.out)) expect.fail(`${what}: bytes differ`);
        compared++;
        if (now.err !== undefined) refused++;
      }
    }
    expect(compared).toBeGreaterThan(2500);
    expect(refused).toBeGreaterThan(500);
  });

  it('gives the full decode\'s first bytes for every prefix length, writing nothing past the prefix', () => {
    const seed = scheduleSeed('LZ4_SEED', 'lz4 prefix differential');
    const r = rng(seed);
    let tried = 0;
    for (let round = 0; round < 120; round++) {
      const raw = input(r, round < 60 ? Math.floor(r() * 3000) : sizeOf(r));
      const c = compressSync(Buffer.from(raw));
      const want = uncompressSync(c);
      for (const n of prefixLengths(r, raw.length)) {
        const { err, out, tailKept } = decodePrefix(c, raw.length, n);
        const what = `prefix ${n} of ${raw.length}, round ${round} (LZ4_SEED=${seed})`;
        expect(err, what).toBeUndefined();
        expect(tailKept, what).toBe(true);
        if (!Buffer.from(out.subarray(0, n)).equals(want.subarray(0, n))) expect.fail(`${what}: bytes differ`);
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(50_000);
  });

  it('on damaged streams throws the full decode\'s error or gives the bytes it wrote there; never writes past the prefix', () => {
    const seed = scheduleSeed('LZ4_SEED', 'lz4 prefix damage');
    const r = rng(seed);
    let refused = 0;
    let decoded = 0;
    for (let round = 0; round < 200; round++) {
      const raw = input(r, 1 + Math.floor(r() * 20_000));
      const c = compressSync(Buffer.from(raw));
      const g = regions(c, 4);
      const streams: Array<{ bad: Uint8Array; length: number; what: string }> = [];
      for (const region of Object.keys(g) as Array<keyof Regions>) {
        const at = g[region];
        for (let k = 0; k < 3 && at.length > 0; k++) {
          const bad = Uint8Array.from(c);
          const p = at[Math.floor(r() * at.length)] as number;
          bad[p] = k === 0 ? 0 : k === 1 ? 255 : (bad[p] as number) ^ (1 << Math.floor(r() * 8));
          streams.push({ bad, length: raw.length, what: `${region} byte ${p}` });
        }
      }
      const cut = 4 + Math.floor(r() * (c.length - 4));
      streams.push({ bad: Uint8Array.from(c.subarray(0, cut)), length: raw.length, what: `cut at ${cut}` });
      for (const length of [raw.length - 1, raw.length + 1]) if (length >= 0) streams.push({ bad: Uint8Array.from(c), length, what: `length ${length}` });
      for (const { bad, length, what } of streams) {
        const full = decode(bad, 4, bad.length, length);
        for (const n of [0, 1, 2, 5, 17, 64, 300, Math.floor(r() * (length + 1)), length - 1, length, length + 5]) {
          if (n < 0) continue;
          const at = `${what}, prefix ${n} of ${length}, round ${round} (LZ4_SEED=${seed})`;
          const got = decodePrefix(bad, length, n);
          expect(got.tailKept, at).toBe(true);
          if (got.err !== undefined) {
            // Refused: only where the full decode refuses, with its error.
            expect(corrupt(got.err), `${at}: ${String(got.err)}`).toBe(true);
            expect(String((got.err as Error).message), at).toBe(String((full.err as Error | undefined)?.message));
            refused++;
          } else {
            const m = Math.min(n, length);
            if (!Buffer.from(got.out.subarray(0, m)).equals(Buffer.from(full.out.subarray(0, m)))) expect.fail(`${at}: bytes differ from the full decode's`);
            // A prefix of the whole output decodes only when the full decode does.
            if (n >= length) expect(full.err, at).toBeUndefined();
            decoded++;
          }
        }
      }
    }
    expect(refused).toBeGreaterThan(1000);
    expect(decoded).toBeGreaterThan(1000);
  });

  it('refuses a prefix larger than its buffer or a range outside the source, before writing', () => {
    const dst = new Uint8Array(8).fill(SENTINEL);
    const block = Uint8Array.of(0x90, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    expect(() => lz4DecodePrefixInto(block, 0, 10, dst, 12, 9, 'x')).toThrow(/larger than its buffer/);
    expect(() => lz4DecodePrefixInto(block, 0, 11, dst, 12, 4, 'x')).toThrow(/larger than its buffer/);
    expect(() => lz4DecodePrefixInto(block, 3, 2, dst, 12, 4, 'x')).toThrow(/larger than its buffer/);
    expect(dst.every((b) => b === SENTINEL)).toBe(true);
    // Nine literals, the stream's end: a prefix of 4 decodes; the whole (9) decodes; declared 12 with a prefix of 9 is refused as short.
    lz4DecodePrefixInto(block, 0, 10, dst, 9, 4, 'x');
    expect(Array.from(dst.subarray(0, 5))).toStrictEqual([1, 2, 3, 4, SENTINEL]);
    expect(() => lz4DecodePrefixInto(block, 0, 10, new Uint8Array(12), 12, 10, 'x')).toThrow(/shorter than its declared length/);
  });
});
