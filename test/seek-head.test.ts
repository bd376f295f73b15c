/**
 * A seek decompresses only the head and batch times of the block it lands in
 * (storage/seek-head.ts): the same place as from the whole payload, and damage anywhere in
 * the block reported at the seek as before (the error Archive.readPayload gives for it: the
 * CRC32C still covers every stored byte). Frames: seeded payloads of every shape, times
 * with 8-byte varints (the bound on what the head can take), every t against the full
 * payload. Archive: fabric polls in LZ4 blocks of the full blockUpdatesTarget, a byte of
 * every region of a block's frame flipped in turn (header, CRC, reserved bytes, size
 * prefix, the LZ4 head, middle and end), each seek against readPayload's error; and LZ4
 * damaged under a matching CRC32C: before the head's end it fails the seek as before,
 * after it the seek lands where it did and the state refuses the block.
 */
import { describe, expect, it } from 'vitest';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import type { BlockRow } from '../storage/catalog.js';
import { batchesAtOrBefore } from '../storage/codec/batch-times.js';
import { crc32c } from '../storage/codec/crc.js';
import { BlockType, Codec, encodeFrame, FRAME_HEADER_BYTES } from '../storage/codec/frame.js';
import { encodeBatches } from '../storage/codec/payload.js';
import { headAndTimesBytesMax, seekHead } from '../storage/seek-head.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { fabricBatches, flattenBatches, randomBatches, rng } from './helpers/workload.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';

function rowOf(frame: Uint8Array, offset: number): BlockRow {
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const lo = (at: number): number => v.getInt32(at + 4, true) * 2 ** 32 + v.getUint32(at, true);
  return { type: frame[4] as number, offset, frameBytes: frame.length, firstTs: lo(16), lastTs: lo(24), batches: v.getUint32(32, true) } as unknown as BlockRow;
}

describe('seek head', () => {
  it('places a seek as the full payload does, for every t, on payloads of every shape (8-byte time varints too)', () => {
    const seed = scheduleSeed('SEEK_HEAD_SEED', 'seek head frames');
    const r = rng(seed);
    let lz4 = 0;
    let longVarints = 0;
    for (let round = 0; round < 150; round++) {
      const kind = round % 3;
      const batches =
        kind === 0
          ? [...fabricBatches(seed + round, 2 + Math.floor(r() * 6), 5 + Math.floor(r() * 60))]
          : randomBatches(seed + round, 1 + Math.floor(r() * 300), { paths: 1 + Math.floor(r() * 200), maxUpdates: 1 + Math.floor(r() * 40) });
      if (kind === 2) {
        // Times that jump by up to 2^52 µs, back and forth in their deltas: delta-of-delta varints of 8 bytes.
        let ts = 0;
        for (const b of batches) {
          ts += r() < 0.5 ? 1 : Math.floor(r() * 2 ** 52);
          b.ts = ts;
        }
      }
      const { flat } = flattenBatches(batches);
      const raw = encodeBatches(flat);
      const firstTs = flat.ts[0] as number;
      const frame = encodeFrame({ type: BlockType.DELTA, firstTs, lastTs: flat.ts[flat.ts.length - 1] as number, batches: flat.ts.length, updates: flat.ids.length }, raw);
      if (frame[5] === Codec.LZ4) lz4++;
      const row = rowOf(frame, 0);
      const head = seekHead(frame, row);
      expect(head, `round ${round} (SEEK_HEAD_SEED=${seed})`).toBeDefined();
      const n = Math.min(raw.length, headAndTimesBytesMax(flat.ts.length));
      expect(Buffer.from(head!.subarray(0, n)).equals(Buffer.from(raw.subarray(0, n))), `round ${round} (SEEK_HEAD_SEED=${seed})`).toBe(true);
      expect(head!.length).toBe(raw.length);
      if (kind === 2 && n < raw.length) longVarints++;
      // Whatever the scratch holds past the head (another block's bytes), the place is the full payload's.
      for (const t of [firstTs - 1, ...flat.ts, ...flat.ts.map((x) => x + 1), ...flat.ts.map((x) => x - 1)]) {
        expect(batchesAtOrBefore(head!, firstTs, flat.ts.length, t), `t ${t}, round ${round} (SEEK_HEAD_SEED=${seed})`).toBe(batchesAtOrBefore(raw, firstTs, flat.ts.length, t));
      }
      // The frame against another row, damaged or cut: not a head (the archive's own checks then speak).
      expect(seekHead(frame, { ...row, batches: row.batches + 1 })).toBeUndefined();
      expect(seekHead(frame.subarray(0, frame.length - 1), row)).toBeUndefined();
      const bad = Uint8Array.from(frame);
      const at = r() < 0.5 ? Math.floor(r() * 40) : FRAME_HEADER_BYTES + Math.floor(r() * (frame.length - FRAME_HEADER_BYTES));
      bad[at] = (bad[at] as number) ^ (1 << Math.floor(r() * 8));
      expect(seekHead(bad, row), `byte ${at} flipped, round ${round} (SEEK_HEAD_SEED=${seed})`).toBeUndefined();
    }
    expect(lz4).toBeGreaterThan(30);
    expect(longVarints).toBeGreaterThan(10);
  });
});

interface Written {
  dir: string;
  name: string;
  row: BlockRow;
  /** A time inside the block, and how many of its batches are at or before it. */
  t: number;
  k: number;
}

/** Fabric polls of 512 paths in blocks of the full blockUpdatesTarget (LZ4); the fourth delta block, a time in it and its place. */
async function writeFabric(seed: number): Promise<Written> {
  const dir = await tmpDir();
  const w = await Archive.open(dir, { flushIntervalMs: 0, imageFrequencyBytes: 0 });
  // Five full blocks and more, whatever the block size (512 updates a poll).
  for (const b of fabricBatches(seed, 64, Math.ceil((6 * STORAGE_LIMITS.blockUpdatesTarget) / 512))) w.writer!.append(b.updates, b.ts);
  await w.writer!.flush();
  const f = w.files[0]!;
  const t = w.table(f);
  expect(t.deltas.length).toBeGreaterThan(4);
  const row = t.delta(3);
  const raw = await w.readPayload(f, row);
  const frame = await w.readBytes(f, row.offset, row.frameBytes);
  expect(frame[5]).toBe(Codec.LZ4);
  // The head and times are a small part of the payload: the seek decompresses a prefix.
  expect(headAndTimesBytesMax(row.batches) * 4).toBeLessThan(raw.length);
  const mid = row.firstTs + Math.floor((row.lastTs - row.firstTs) / 2);
  const k = batchesAtOrBefore(raw, row.firstTs, row.batches, mid);
  expect(k).toBeGreaterThan(0);
  expect(k).toBeLessThan(row.batches);
  await w.close();
  return { dir, name: f.name, row, t: mid, k };
}

/** What a fresh read-only open gives for the block: readPayload's error (or none), the seek's, and the state's. */
async function outcomes(x: Written): Promise<{ payload: unknown; seek: unknown; state: unknown; next: unknown }> {
  const a = await Archive.open(x.dir, { readonly: true });
  try {
    const f = a.files.find((e) => e.name === x.name)!;
    const row = a.table(f).delta(3);
    const payload = await a.readPayload(f, row).then(() => undefined, (e: unknown) => e);
    const c = a.cursor();
    const seek = await c.seek({ ts: x.t }).then(() => undefined, (e: unknown) => e);
    const state = seek === undefined ? await c.stateById().then(() => undefined, (e: unknown) => e) : undefined;
    const c2 = a.cursor();
    const next = seek === undefined ? await c2.seek({ ts: x.t }).then(() => c2.nextRaw()).then((b) => b?.ts, (e: unknown) => e) : undefined;
    return { payload, seek, state, next };
  } finally {
    await a.close();
  }
}

/** Where, in a stored LZ4 payload (size prefix first), the match offset of the first sequence whose output starts at or past `outputAt`. */
function matchOffsetPast(stored: Uint8Array, outputAt: number): number {
  let s = 4;
  let d = 0;
  for (;;) {
    const token = stored[s++] as number;
    let lit = token >>> 4;
    if (lit === 15) for (let b = 255; b === 255; ) lit += b = stored[s++] as number;
    s += lit;
    d += lit;
    if (s >= stored.length) throw new Error(`no match starts past ${outputAt}`);
    if (d >= outputAt) return s;
    s += 2;
    let len = (token & 15) + 4;
    if ((token & 15) === 15) for (let b = 255; b === 255; ) len += b = stored[s++] as number;
    d += len;
  }
}

function described(e: unknown): object | undefined {
  if (e === undefined) return undefined;
  const err = e as { code?: string; message?: string; details?: unknown };
  return { code: err.code, message: err.message, details: err.details };
}

async function patch(dir: string, name: string, at: number, bytes: Uint8Array): Promise<void> {
  const fh = await open(join(dir, name), 'r+');
  await fh.write(bytes, 0, bytes.length, at);
  await fh.close();
}

describe('seek head on an archive', () => {
  it('a byte flipped in any region of the block a seek lands in fails the seek with readPayload\'s error, as before', async () => {
    const seed = scheduleSeed('SEEK_HEAD_SEED', 'seek head damage');
    const r = rng(seed);
    const x = await writeFabric(seed);
    const file = join(x.dir, x.name);
    const intact = await readFile(file);
    const clean = await outcomes(x);
    expect(clean.seek).toBeUndefined();
    expect(clean.state).toBeUndefined();
    const stored = x.row.frameBytes - FRAME_HEADER_BYTES;
    // Every header byte; the size prefix; the LZ4 block's first bytes (the head), a seeded few in the middle, its last bytes.
    const at: number[] = [];
    for (let i = 0; i < FRAME_HEADER_BYTES + 4 + 16; i++) at.push(i);
    for (let i = 0; i < 12; i++) at.push(FRAME_HEADER_BYTES + 20 + Math.floor(r() * (stored - 40)));
    for (let i = 1; i <= 8; i++) at.push(x.row.frameBytes - i);
    let failed = 0;
    for (const p of at) {
      const b = Uint8Array.of((intact[x.row.offset + p] as number) ^ (1 << Math.floor(r() * 8)));
      await patch(x.dir, x.name, x.row.offset + p, b);
      const got = await outcomes(x);
      await writeFile(file, intact);
      const what = `frame byte ${p} of ${x.row.frameBytes} (SEEK_HEAD_SEED=${seed})`;
      expect(described(got.seek), what).toStrictEqual(described(got.payload));
      if (got.seek !== undefined) failed++;
      // The reserved bytes 44..48 are outside the CRC (readers ignore them): nothing fails there.
      if (p >= 44 && p < 48) expect(got.seek, what).toBeUndefined();
      else expect(got.seek, what).toMatchObject({ code: expect.stringMatching(/^TPD_/), details: { file: x.name, offset: x.row.offset } });
    }
    expect(failed).toBe(at.length - 4);
  });

  it('LZ4 damaged under a matching CRC32C: before the head\'s end the seek fails as before; after it the seek lands as before and the state and read refuse the block', async () => {
    const seed = scheduleSeed('SEEK_HEAD_SEED', 'seek head lz4 damage');
    const x = await writeFabric(seed);
    const file = join(x.dir, x.name);
    const intact = await readFile(file);
    const clean = await outcomes(x);
    const frameAt = (buf: Uint8Array): Uint8Array => buf.subarray(x.row.offset, x.row.offset + x.row.frameBytes);
    /** The frame with its stored bytes changed by `change`, CRC32C made to match again. */
    async function rewrite(change: (stored: Uint8Array) => void): Promise<void> {
      const frame = Uint8Array.from(frameAt(intact));
      change(frame.subarray(FRAME_HEADER_BYTES));
      new DataView(frame.buffer).setUint32(40, crc32c(frame.subarray(FRAME_HEADER_BYTES), crc32c(frame.subarray(0, 40))), true);
      await patch(x.dir, x.name, x.row.offset, frame);
    }
    // The first sequence's match offset set to 0 (the head's first bytes are literals): refused at the seek, as readPayload refuses it.
    const stored = frameAt(intact).subarray(FRAME_HEADER_BYTES);
    const token = stored[4] as number;
    let s = 5;
    let lit = token >>> 4;
    if (lit === 15) for (let b = 255; b === 255; ) lit += b = stored[s++] as number;
    expect(s + lit, 'the first sequence ends before the head does').toBeLessThan(headAndTimesBytesMax(x.row.batches));
    const offsetAt = s + lit;
    await rewrite((st) => {
      st[offsetAt] = 0;
      st[offsetAt + 1] = 0;
    });
    const early = await outcomes(x);
    expect(early.seek).toMatchObject({ code: 'TPD_CORRUPT_BLOCK', details: { file: x.name, offset: x.row.offset } });
    expect(described(early.seek)).toStrictEqual(described(early.payload));
    expect(String((early.seek as Error).message)).toMatch(/LZ4 block match offset out of range/);
    await writeFile(file, intact);
    // Past the head: the declared length one more (header and size prefix), and the first match that starts past the head with offset 0.
    const head = headAndTimesBytesMax(x.row.batches);
    const pastHead = matchOffsetPast(stored, head);
    for (const change of ['longer', 'offset'] as const) {
      await rewrite((st) => {
        if (change === 'offset') {
          st[pastHead] = 0;
          st[pastHead + 1] = 0;
        } else {
          const v = new DataView(st.buffer, st.byteOffset);
          v.setUint32(0, v.getUint32(0, true) + 1, true);
        }
      });
      if (change === 'longer') {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(intact.readUInt32LE(x.row.offset + 12) + 1);
        await patch(x.dir, x.name, x.row.offset + 12, b);
        // CRC again over the new header.
        const now = await readFile(file);
        const frame = Uint8Array.from(frameAt(now));
        new DataView(frame.buffer).setUint32(40, crc32c(frame.subarray(FRAME_HEADER_BYTES), crc32c(frame.subarray(0, 40))), true);
        await patch(x.dir, x.name, x.row.offset, frame);
      }
      const late = await outcomes(x);
      await writeFile(file, intact);
      const what = `${change} (SEEK_HEAD_SEED=${seed})`;
      expect(late.payload, what).toMatchObject({ code: 'TPD_CORRUPT_BLOCK', message: expect.stringMatching(change === 'offset' ? /match offset out of range/ : /shorter than its declared length/) });
      expect(late.seek, what).toBeUndefined();
      expect(late.state, what).toMatchObject({ code: 'TPD_CORRUPT_BLOCK', details: { file: x.name, offset: x.row.offset } });
      expect(late.next, what).toMatchObject({ code: 'TPD_CORRUPT_BLOCK', details: { file: x.name, offset: x.row.offset } });
    }
    expect(clean.next).toBeTypeOf('number');
  });
});
