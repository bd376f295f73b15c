/**
 * Codec 3, SPLIT (storage/codec/frame-split.ts, docs/format.md "Codec 3 (split)"): a
 * DELTA/IMAGE payload's head stored apart (LZ4 when that pays), its column bodies verbatim.
 * payloadBodiesStart on a payload whose head is known byte by byte, and its refusals.
 * Round trips of real payloads (numbers, strings, mixed, uniform and not, empty images)
 * give codec 1's raw payload, with or without a reused buffer, and the bodies sit in the
 * stored payload where splitBodiesOffset says. Seeded damage in every region of a split
 * frame is caught by the CRC32C; frames whose CRC32C matches but whose lengths, head or
 * type do not fit are refused with TPD_CORRUPT_BLOCK, before any large allocation. A
 * seek's head (storage/seek-head.ts) of a split frame places a seek as the full payload.
 * An archive written by the writer, one sealed file's DELTA and IMAGE frames rewritten as
 * codec 3: read back batch for batch, verify says ok, and reports a flipped body byte.
 * Seeded (SPLIT_SEED).
 */
import { describe, expect, it } from 'vitest';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch } from '../protocol/value.js';
import { Archive } from '../storage/archive.js';
import type { BlockRow } from '../storage/catalog.js';
import { batchesAtOrBefore } from '../storage/codec/batch-times.js';
import { crc32c } from '../storage/codec/crc.js';
import { BlockType, Codec, decodeFrameHeader, encodeFrame, encodeSplitFrame, FRAME_HEADER_BYTES, openFrame, PayloadBuffer, type FrameMeta } from '../storage/codec/frame.js';
import { SPLIT_LENGTHS_BYTES, splitBodiesOffset, splitHeadRawBytes } from '../storage/codec/frame-split.js';
import { decodeHeader, encodeSlot, HEADER_BYTES, slotOffset } from '../storage/codec/header.js';
import { encodeBatches, type FlatBatches } from '../storage/codec/payload.js';
import { payloadBodiesStart } from '../storage/codec/payload-head.js';
import { seekHead } from '../storage/seek-head.js';
import { ROTATED_NAME } from '../storage/segment-file.js';
import { verifyArchive } from '../storage/verify.js';
import { batchBlock } from './helpers/number-blocks.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { xorByte } from './helpers/damage.js';
import { fabricBatches, flattenBatches, randomBatches, rng } from './helpers/workload.js';

function metaOf(b: FlatBatches, type: BlockType = BlockType.DELTA): FrameMeta {
  const ts = b.ts;
  return { type, firstTs: ts.length > 0 ? (ts[0] as number) : 0, lastTs: ts.length > 0 ? (ts[ts.length - 1] as number) : 0, batches: b.batchCount, updates: b.updateCount };
}

/** Real payloads of every shape the writer makes, each with its frame meta. */
function payloads(seed: number): Array<{ what: string; raw: Uint8Array; meta: FrameMeta }> {
  const r = rng(seed);
  const out: Array<{ what: string; raw: Uint8Array; meta: FrameMeta }> = [];
  const add = (what: string, b: FlatBatches, type: BlockType = BlockType.DELTA): void => {
    out.push({ what, raw: Uint8Array.from(encodeBatches(b)), meta: metaOf(b, type) });
  };
  for (let i = 0; i < 12; i++) add(`numbers ${i}`, batchBlock(r));
  for (let i = 0; i < 6; i++) add(`uniform fabric ${i}`, flattenBatches([...fabricBatches(seed + i, 1 + Math.floor(r() * 8), 5 + Math.floor(r() * 80))]).flat);
  for (let i = 0; i < 8; i++) add(`mixed ${i}`, flattenBatches(randomBatches(seed + i, 1 + Math.floor(r() * 400), { paths: 1 + Math.floor(r() * 300), maxUpdates: 1 + Math.floor(r() * 30) })).flat);
  const strings: Batch[] = Array.from({ length: 50 }, (_, b) => ({ ts: 1e15 + b * 1000, updates: Array.from({ length: 20 }, (_, p) => [`/s/${p}`, `v${Math.floor(r() * 1e9).toString(36)}`] as [string, string]) }));
  add('strings', flattenBatches(strings).flat);
  add('image of one path', flattenBatches([{ ts: 5, updates: [['/a', 1.5]] }]).flat, BlockType.IMAGE);
  add('empty image', { ts: [7], counts: [0], ids: [], values: [], batchCount: 1, updateCount: 0 }, BlockType.IMAGE);
  add('no batch', { ts: [], counts: [], ids: [], values: [], batchCount: 0, updateCount: 0 }, BlockType.IMAGE);
  return out;
}

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (isTapedeckError(err) && err.code === 'TPD_CORRUPT_BLOCK') return err.message;
    throw err;
  }
  throw new Error('accepted');
}

/** `frame`'s header over `stored` (its length set), `edit` applied, CRC32C recomputed to match. */
function reframe(frame: Uint8Array, stored: Uint8Array, edit?: (v: DataView, f: Uint8Array) => void): Uint8Array {
  const f = new Uint8Array(FRAME_HEADER_BYTES + stored.length);
  f.set(frame.subarray(0, FRAME_HEADER_BYTES));
  f.set(stored, FRAME_HEADER_BYTES);
  const v = new DataView(f.buffer);
  v.setUint32(8, stored.length, true);
  edit?.(v, f);
  v.setUint32(40, crc32c(f.subarray(FRAME_HEADER_BYTES), crc32c(f.subarray(0, 40))), true);
  return f;
}

/** A split payload from its parts: the three lengths as given, then the head's and the bodies' bytes. */
function splitBytes(rawLength: number, h: number, sh: number, head: Uint8Array, bodies: Uint8Array): Uint8Array {
  const out = new Uint8Array(SPLIT_LENGTHS_BYTES + head.length + bodies.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, rawLength, true);
  v.setUint32(4, h, true);
  v.setUint32(8, sh, true);
  out.set(head, SPLIT_LENGTHS_BYTES);
  out.set(bodies, SPLIT_LENGTHS_BYTES + head.length);
  return out;
}

describe('payloadBodiesStart', () => {
  it('is the length of everything before the first column body', () => {
    // 0, 2 | nb 1, nu 1, nc 1 | time 0 | path id delta 0 | list: head 2, column 0 (svar 1 from -1) | one kind byte | the body.
    const raw = encodeBatches(flattenBatches([{ ts: 5, updates: [['/a', 1.5]] }]).flat);
    expect([...raw.subarray(0, 9)]).toStrictEqual([0, 2, 1, 1, 1, 0, 0, 2, 2]);
    expect(payloadBodiesStart(raw)).toBe(10);
    for (const { what, raw: p } of payloads(11)) {
      const h = payloadBodiesStart(p);
      // The head is whole by itself and no byte shorter.
      expect(payloadBodiesStart(p.subarray(0, h)), what).toBe(h);
      expect(refusal(() => payloadBodiesStart(p.subarray(0, h - 1))), what).toMatch(/truncated/);
    }
  });

  it('refuses layout 1, a cut head and lists that do not add up (TPD_CORRUPT_BLOCK)', () => {
    // Layout 1: nb 1, nu 1, nc 1, time, path id, list, then kind and body together.
    expect(refusal(() => payloadBodiesStart(Uint8Array.from([1, 1, 1, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f])))).toMatch(/layout 1/);
    expect(refusal(() => payloadBodiesStart(Uint8Array.from([0, 2, 1, 2, 1, 0, 0, 2, 0, 0x10, 9])))).toMatch(/do not add up/);
    expect(refusal(() => payloadBodiesStart(Uint8Array.from([0, 3, 1, 1, 1, 0, 0, 2, 0, 0x10])))).toMatch(/unknown payload layout/);
    expect(refusal(() => payloadBodiesStart(new Uint8Array(0)))).toMatch(/truncated/);
  });
});

describe('codec 3 frames', () => {
  it('give codec 1\'s raw payload back, with or without a reused buffer, bodies where splitBodiesOffset says', () => {
    const seed = scheduleSeed('SPLIT_SEED', 'split round trip');
    const reused = new PayloadBuffer(1 << 16);
    let lz4Heads = 0;
    let verbatimHeads = 0;
    for (const { what, raw, meta } of payloads(seed)) {
      const where = `${what} (SPLIT_SEED=${seed})`;
      const one = encodeFrame(meta, raw);
      const three = encodeSplitFrame(meta, raw);
      const h1 = decodeFrameHeader(one);
      const h3 = decodeFrameHeader(three);
      if (typeof h1 === 'string' || typeof h3 === 'string') throw new Error(where);
      expect(h3.codec, where).toBe(Codec.SPLIT);
      expect({ ...h3, codec: 0, storedBytes: 0, crc: 0, frameBytes: 0 }, where).toStrictEqual({ ...h1, codec: 0, storedBytes: 0, crc: 0, frameBytes: 0 });
      const fromOne = openFrame(one, 'one').raw;
      for (const into of [undefined, reused]) expect(Buffer.from(openFrame(three, 'three', into).raw).equals(Buffer.from(fromOne)), where).toBe(true);
      expect(Buffer.from(fromOne).equals(Buffer.from(raw)), where).toBe(true);
      const stored = three.subarray(FRAME_HEADER_BYTES);
      const h = splitHeadRawBytes(stored);
      expect(h, where).toBe(payloadBodiesStart(raw));
      const at = splitBodiesOffset(stored);
      expect(Buffer.from(stored.subarray(at)).equals(Buffer.from(raw.subarray(h))), where).toBe(true);
      if (at - SPLIT_LENGTHS_BYTES < h) lz4Heads++;
      else verbatimHeads++;
    }
    expect(lz4Heads).toBeGreaterThan(10);
    expect(verbatimHeads).toBeGreaterThan(2);
  });

  it('are not written for PATHS nor for a payload whose head does not parse', () => {
    expect(() => encodeSplitFrame({ type: BlockType.PATHS, firstTs: 0, lastTs: 0, batches: 0, updates: 1 }, new Uint8Array(10))).toThrow(TypeError);
    expect(refusal(() => encodeSplitFrame({ type: BlockType.DELTA, firstTs: 0, lastTs: 0, batches: 1, updates: 1 }, Uint8Array.from([1, 1, 1, 0, 0, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f])))).toMatch(/layout 1/);
  });

  it('fail their CRC32C for a damaged byte in every region: header, lengths, head, bodies', () => {
    const seed = scheduleSeed('SPLIT_SEED', 'split damage');
    const r = rng(seed);
    const cases = payloads(seed).filter((p) => p.raw.length > 200);
    const seen = new Set<string>();
    for (let round = 0; round < 400; round++) {
      const { what, raw, meta } = cases[Math.floor(r() * cases.length)]!;
      const frame = encodeSplitFrame(meta, raw);
      const at = splitBodiesOffset(frame.subarray(FRAME_HEADER_BYTES)) + FRAME_HEADER_BYTES;
      const regions: Array<[string, number, number]> = [
        ['frame header', 0, 40], ['CRC', 40, 44], ['lengths', 48, 60], ['head', 60, at], ['bodies', at, frame.length],
      ];
      const [name, from, to] = regions[round % regions.length]!;
      if (to <= from) continue;
      const bad = Uint8Array.from(frame);
      const i = from + Math.floor(r() * (to - from));
      bad[i] = (bad[i] as number) ^ (1 + Math.floor(r() * 255));
      const message = refusal(() => openFrame(bad, 'blk'));
      // The frame header's fields are checked before the CRC32C (magic, type, codec, lengths, times): any of those errors, or the CRC's.
      expect(message, `${what}, ${name} byte ${i} (SPLIT_SEED=${seed})`).toMatch(name === 'frame header' ? /^blk: / : /^blk: CRC32C mismatch$/);
      seen.add(name);
    }
    expect(seen.size).toBe(5);
  });

  it('whose CRC32C matches but whose lengths, head or type do not fit are refused before any large allocation', () => {
    const { raw, meta } = payloads(3).find((p) => p.what === 'uniform fabric 0')!;
    const frame = encodeSplitFrame(meta, raw);
    const stored = frame.subarray(FRAME_HEADER_BYTES);
    const h = splitHeadRawBytes(stored);
    const sh = splitBodiesOffset(stored) - SPLIT_LENGTHS_BYTES;
    expect(sh).toBeLessThan(h);
    const lz4Head = stored.subarray(SPLIT_LENGTHS_BYTES, SPLIT_LENGTHS_BYTES + sh);
    const bodies = raw.subarray(h);
    const n = raw.length;
    const big = 64 * 1024 * 1024;
    const withRaw = (rawBytes: number) => (v: DataView): void => v.setUint32(12, rawBytes, true);
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['raw length one more than the header\'s', reframe(frame, splitBytes(n + 1, h, sh, lz4Head, bodies)), /declares \d+ raw bytes, its frame header/],
      ['raw length one less than the header\'s', reframe(frame, splitBytes(n - 1, h, sh, lz4Head, bodies)), /declares \d+ raw bytes, its frame header/],
      ['head longer than the payload', reframe(frame, splitBytes(n, n + 1, sh, lz4Head, bodies)), /longer than the payload/],
      ['head stored past the payload', reframe(frame, splitBytes(n, h, stored.length, lz4Head, bodies)), /runs past the payload/],
      ['a body byte missing', reframe(frame, splitBytes(n, h, sh, lz4Head, bodies.subarray(1))), /body bytes/],
      ['a body byte too many', reframe(frame, splitBytes(n, h, sh, lz4Head, Buffer.concat([bodies, Buffer.of(0)]))), /body bytes/],
      ['head stored longer than raw', reframe(frame, splitBytes(n, h, h + 1, Buffer.concat([raw.subarray(0, h), Buffer.of(0)]), bodies), withRaw(n)), /longer than its \d+ raw bytes/],
      ['LZ4 head padded to H, read verbatim', reframe(frame, splitBytes(n, h, h, Buffer.concat([lz4Head, Buffer.alloc(h - sh)]), bodies)), /split head: malformed payload/],
      ['LZ4 head one byte short of H', reframe(frame, splitBytes(n + 1, h + 1, sh, lz4Head, bodies), withRaw(n + 1)), /split head: LZ4 block/],
      ['LZ4 head one byte past H', reframe(frame, splitBytes(n - 1, h - 1, sh, lz4Head, bodies), withRaw(n - 1)), /split head: LZ4 block/],
      ['verbatim head ending past the bodies\' start', reframe(frame, splitBytes(n, h + 1, h + 1, raw.subarray(0, h + 1), raw.subarray(h + 1))), /declares \d+ bytes, its bodies start at/],
      ['verbatim head ending before the bodies\' start', reframe(frame, splitBytes(n, h - 1, h - 1, raw.subarray(0, h - 1), raw.subarray(h - 1))), /declares \d+ bytes, its bodies start at/],
      ['empty LZ4 head', reframe(frame, splitBytes(n, 40, 0, new Uint8Array(0), raw.subarray(40))), /split head: LZ4 block truncated/],
      ['64 MiB declared from a short LZ4 head', reframe(frame, splitBytes(big, big - bodies.length, sh, lz4Head, bodies), withRaw(big)), /LZ4 head declares/],
      ['shorter than its lengths', reframe(frame, new Uint8Array(11)), /shorter than its three lengths/],
      ['on a PATHS frame', reframe(frame, stored, (_, f) => (f[4] = BlockType.PATHS)), /split codec on a PATHS block/],
      ['layout 1 payload', reframe(frame, splitBytes(16, 7, 7, Uint8Array.from([1, 1, 1, 0, 0, 2, 2]), Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f])), withRaw(16)), /layout 1/],
    ];
    const reused = new PayloadBuffer(1 << 20);
    for (const [what, bad, message] of cases) {
      for (const into of [undefined, reused]) {
        const before = process.memoryUsage().arrayBuffers;
        expect(refusal(() => openFrame(bad, 'blk', into)), what).toMatch(new RegExp(`^blk: (split )?.*${message.source}`));
        expect(process.memoryUsage().arrayBuffers - before, `${what}: allocated`).toBeLessThan(4 << 20);
      }
    }
  });

  it('give a seek its head and times: the same place as the full payload', () => {
    const seed = scheduleSeed('SPLIT_SEED', 'split seek head');
    for (const { what, raw, meta } of payloads(seed)) {
      if (meta.batches === 0) continue;
      const frame = encodeSplitFrame(meta, raw);
      const row = { type: meta.type, offset: 0, frameBytes: frame.length, firstTs: meta.firstTs, lastTs: meta.lastTs, batches: meta.batches, updates: meta.updates } as BlockRow;
      const head = seekHead(frame, row);
      expect(head, `${what} (SPLIT_SEED=${seed})`).toBeDefined();
      for (const t of [meta.firstTs - 1, meta.firstTs, (meta.firstTs + meta.lastTs) / 2, meta.lastTs, meta.lastTs + 1]) {
        expect(batchesAtOrBefore(head!, meta.firstTs, meta.batches, t), `${what} at ${t} (SPLIT_SEED=${seed})`).toBe(batchesAtOrBefore(raw, meta.firstTs, meta.batches, t));
      }
    }
  });
});

/**
 * Rewrites a sealed file's DELTA and IMAGE frames as codec 3 (same raw payloads, same header
 * fields but codec, stored length and CRC32C), its commit slots set to the new length.
 * Returns each split frame's offset and where its bodies start in the file.
 */
async function splitSealedFile(path: string): Promise<Array<{ offset: number; bodiesAt: number; end: number; lastTs: number; lz4Head: boolean }>> {
  const buf = await readFile(path);
  const header = decodeHeader(buf.subarray(0, HEADER_BYTES));
  const parts: Uint8Array[] = [Uint8Array.from(buf.subarray(0, HEADER_BYTES))];
  const split: Array<{ offset: number; bodiesAt: number; end: number; lastTs: number; lz4Head: boolean }> = [];
  let length = HEADER_BYTES;
  for (let pos = HEADER_BYTES; pos < header.commit.committedBytes; ) {
    const h = decodeFrameHeader(buf.subarray(pos));
    if (typeof h === 'string') throw new Error(`${path}@${pos}: ${h}`);
    const frame = buf.subarray(pos, pos + h.frameBytes);
    pos += h.frameBytes;
    let out: Uint8Array = frame;
    if (h.type !== BlockType.PATHS) {
      out = encodeSplitFrame(h, openFrame(frame, 'rewrite').raw);
      const stored = out.subarray(FRAME_HEADER_BYTES);
      const bodiesAt = length + FRAME_HEADER_BYTES + splitBodiesOffset(stored);
      split.push({ offset: length, bodiesAt, end: length + out.length, lastTs: h.lastTs, lz4Head: splitBodiesOffset(stored) - SPLIT_LENGTHS_BYTES < splitHeadRawBytes(stored) });
    }
    parts.push(out);
    length += out.length;
  }
  const file = Buffer.concat(parts);
  const g = header.commit.generation;
  for (const generation of [g + 1, g + 2]) file.set(encodeSlot({ generation, committedBytes: file.length }), slotOffset(generation));
  await writeFile(path, file);
  return split;
}

async function readAll(dir: string): Promise<string[]> {
  const a = await Archive.open(dir, { readonly: true });
  try {
    const out: string[] = [];
    const c = a.cursor();
    for (let b = await c.next(); b; b = await c.next()) out.push(JSON.stringify(b));
    return out;
  } finally {
    await a.close();
  }
}

describe('an archive whose sealed files are in codec 3', () => {
  it('reads every batch as before, verifies ok, and reports a damaged body', { timeout: 30_000 }, async () => {
    const seed = scheduleSeed('SPLIT_SEED', 'split archive');
    const dir = await tmpDir('tapedeck-split-');
    const a = await Archive.open(dir, { imageFrequencyBytes: 6000, flushIntervalMs: 0, rotateSizeBytes: 9000 });
    // Fabric polls first (heads that LZ4 shortens: regular times, repeated lists), then mixed values.
    const batches = [...fabricBatches(seed, 3, 60, 1_600_000_000_000_000), ...randomBatches(seed, 500, { paths: 40, maxUpdates: 8 })];
    for (let i = 0; i < batches.length; i++) {
      a.writer!.append(batches[i]!.updates, batches[i]!.ts);
      if (i % 100 === 99) await a.writer!.flush();
    }
    await a.close();
    const before = await readAll(dir);
    expect(before.length).toBe(batches.length);
    const sealed = (await readdir(dir)).filter((n) => ROTATED_NAME.test(n)).sort();
    expect(sealed.length).toBeGreaterThanOrEqual(2);
    // Every sealed file rewritten; `current` stays in codec 1.
    const splits = new Map<string, Awaited<ReturnType<typeof splitSealedFile>>>();
    for (const name of sealed) splits.set(name, await splitSealedFile(join(dir, name)));
    const split = [...splits.values()].flat();
    expect(split.length).toBeGreaterThan(5);
    expect(split.some((f) => f.lz4Head)).toBe(true);
    // The catalog and the sidecars were built for the file's old offsets: derived, rebuilt at the next open.
    for (const f of await readdir(dir)) if (f.startsWith('catalog.sqlite') || f === 'series-index') await rm(join(dir, f), { recursive: true, force: true });
    const report = await verifyArchive(dir);
    expect(report.problems, `SPLIT_SEED=${seed}`).toStrictEqual([]);
    expect(report.ok).toBe(true);
    expect(await readAll(dir)).toStrictEqual(before);
    // Seeks anywhere, and into the split file's blocks (through their heads).
    const r = rng(seed);
    const inSplit = batches.map((b, k) => [b.ts, k] as const).filter(([ts]) => ts >= split[0]!.lastTs && ts <= split[split.length - 1]!.lastTs).map(([, k]) => k);
    expect(inSplit.length).toBeGreaterThan(20);
    const check = await Archive.open(dir, { readonly: true });
    try {
      for (let i = 0; i < 40; i++) {
        const k = i % 2 === 0 ? Math.floor(r() * batches.length) : inSplit[Math.floor(r() * inSplit.length)]!;
        const c = check.cursor();
        await c.seek({ ts: batches[k]!.ts });
        const next = await c.next();
        expect(next === null ? null : JSON.stringify(next), `seek to batch ${k} (SPLIT_SEED=${seed})`).toBe(before[k + 1] ?? null);
      }
    } finally {
      await check.close();
    }
    // A writable open builds the catalog from the files: its rows agree with them.
    await (await Archive.open(dir)).close();
    expect((await verifyArchive(dir)).problems, `SPLIT_SEED=${seed}`).toStrictEqual([]);
    // A body byte flipped: the frame's CRC32C fails, verify names the block.
    // (An empty image has no body byte.)
    const name = sealed[Math.floor(r() * sealed.length)]!;
    const withBodies = splits.get(name)!.filter((f) => f.end > f.bodiesAt);
    const hit = withBodies[Math.floor(r() * withBodies.length)]!;
    const at = hit.bodiesAt + Math.floor(r() * (hit.end - hit.bodiesAt));
    await xorByte(join(dir, name), at, 0x10);
    const damaged = await verifyArchive(dir);
    expect(damaged.ok).toBe(false);
    expect(damaged.problems, `byte ${at} (SPLIT_SEED=${seed})`).toContainEqual({ file: name, offset: hit.offset, code: 'TPD_CORRUPT_BLOCK', message: `block at ${hit.offset}: CRC32C mismatch` });
  });
});
