/**
 * Archive.payloadOf decompresses LZ4 payloads into one buffer the archive reuses block after
 * block (codec/frame.ts PayloadBuffer). That is safe only if nothing decoded from a payload
 * keeps a view of it. This reads a seeded archive of every value kind (numbers with NaN
 * payloads and -0, strings, bytes, booleans, null, bigints, arrays, maps, kinds changing
 * within a path) with Cursor.nextColumns, which reads through payloadOf, holding every
 * block's results (the non-number values as the very objects handed out, ids and number
 * bits copied) while the later blocks overwrite the buffer; then compares all of them, bit
 * for bit, with a fresh read of another Archive instance through next() (blocks decoded
 * from buffers of their own). A control checks that the buffer is in fact reused (a view
 * held from payloadOf shows the next block's bytes), so the comparison is not vacuous.
 * Bytes values on both sides must be copies of their own (a Buffer payload made them views
 * of the frame's read buffer until 2026-12-03, keeping it alive with the value).
 * Seeded (PAYLOAD_BUFFER_SEED).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Value } from '../protocol/value.js';
import { Archive } from '../storage/archive.js';
import { Codec } from '../storage/codec/frame.js';
import type { BlockRow } from '../storage/catalog.js';
import { ColumnBatchesBuilder, type ColumnBatches } from '../storage/column-batches.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { valueDiff } from './helpers/values.js';
import { randomValue, rng } from './helpers/workload.js';

const T0 = 1_763_000_000_000_000;
/**
 * NaNs with payloads (fragile: xor-float.ts isFragileNaN) only in blocks of numbers: a block
 * holding one among other values is read by the codec, not through the buffer. -0 anywhere.
 */
const QUIET_BITS = [0x7ff8000000000001n, 0xfff8000000001234n, 0x8000000000000000n];
const SIGNALLING_BITS = [0x7ff0000000000002n, 0x7ff4000000000000n];

const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);
function fromBits(b: bigint): number {
  u64[0] = b;
  return f64[0] as number;
}

/** A value of kind k: compressible (repeated shapes) so that blocks are stored LZ4. */
function valueOf(r: () => number, k: number, i: number): Value {
  switch (k) {
    case 0: return Math.round(r() * 1000) / 10;
    case 1: return 'state-' + (i % 13) + (r() < 0.2 ? '-' + Math.floor(r() * 1e6).toString(36) : '');
    case 2: return Uint8Array.from({ length: 4 + (i % 9) }, (_, j) => (j * 7 + i) & 255);
    case 3: return r() < 0.5;
    case 4: return null;
    case 5: return 2n ** 60n + BigInt(i % 1000);
    case 6: return [i % 5, 'x' + (i % 3), [null, -0]];
    case 7: return { a: i % 4, b: 'k' + (i % 6), c: { d: Uint8Array.of(i & 255, 1) } };
    case 8: return i % 4 === 0 ? -0 : fromBits(QUIET_BITS[i % QUIET_BITS.length] as bigint);
    case 9: return fromBits(SIGNALLING_BITS[i % SIGNALLING_BITS.length] as bigint);
    default: {
      // Anything randomValue makes but its odd numbers (none is a signalling NaN).
      const v = randomValue(r);
      return typeof v === 'number' && v !== v ? null : v;
    }
  }
}

/** The bytes values in v, at any depth. */
function bytesIn(v: Value, out: Uint8Array[] = []): Uint8Array[] {
  if (v instanceof Uint8Array) out.push(v);
  else if (Array.isArray(v)) for (const x of v) bytesIn(x, out);
  else if (v !== null && typeof v === 'object') for (const x of Object.values(v)) bytesIn(x, out);
  return out;
}

/** A bytes value read from an archive is a copy: its own buffer, exactly its size (not a view keeping a block's buffer). */
function ownCopy(b: Uint8Array): boolean {
  return b.byteOffset === 0 && b.buffer.byteLength === b.byteLength;
}

interface Held {
  ts: number[];
  counts: number[];
  ids: Uint32Array;
  nums: Float64Array;
  otherAt: Uint32Array;
  others: Value[];
}

/** A view held: its non-number values as handed out (the very objects), the rest copied. */
function hold(v: ColumnBatches): Held {
  const from = v.starts[0] as number;
  const to = v.starts[v.batches] as number;
  return {
    ts: Array.from(v.ts.subarray(0, v.batches)),
    counts: Array.from({ length: v.batches }, (_, i) => (v.starts[i + 1] as number) - (v.starts[i] as number)),
    ids: v.ids.slice(from, to),
    nums: v.nums.slice(from, to),
    otherAt: v.otherAt.slice(0, v.otherCount).map((k) => k - from),
    others: v.others.slice(0, v.otherCount),
  };
}

let dirs: Archive[] = [];
afterEach(async () => {
  for (const a of dirs) await a.close();
  dirs = [];
});

/** Records the seeded archive: values of every kind, then blocks of numbers only; a few blocks too small to compress. */
async function recordArchive(seed: number): Promise<string> {
  const r = rng(seed);
  const dir = await tmpDir('tpd-payload-buffer-');
  const w0 = await Archive.open(dir, { flushIntervalMs: 0 });
  const w = w0.writer!;
  const paths = Array.from({ length: 300 }, (_, i) => `/k${i % 10}/p${i}`);
  let ts = T0;
  for (let b = 0; b < 1500; b++) {
    ts += 1000 + Math.floor(r() * 3) * 1000;
    const updates: Array<[string, Value]> = [];
    for (let j = 0; j < paths.length; j++) {
      if (r() < 0.85) continue;
      // Each path mostly keeps a kind, now and then another (kinds changing within a path),
      // kind 10 being randomValue's; NaN payloads (kinds 8, 9) only in blocks of numbers
      // (the last 500 batches), -0 and the plain NaN anywhere.
      const numbersOnly = b >= 1000;
      const k = numbersOnly ? ([0, 8, 9][j % 3] as number) : r() < 0.9 ? j % 11 : Math.floor(r() * 11);
      if (!numbersOnly && (k === 8 || k === 9)) {
        updates.push([paths[j] as string, r() < 0.5 ? -0 : NaN]);
        continue;
      }
      updates.push([paths[j] as string, valueOf(r, k, b + j)]);
    }
    w.append(updates, ts);
    if (r() < 0.02 || b === 999) await w.flush();
    if (b % 97 === 0) {
      // A block of one short batch: too small to compress (stored as it is).
      await w.flush();
      w.append([[paths[0] as string, Uint8Array.of(b & 255, 9)]], (ts += 1000));
      await w.flush();
    }
  }
  await w.flush();
  await w0.close();
  return dir;
}

/** Every held view against a fresh read of another instance (next(): blocks decoded from buffers of their own), bit for bit; bytes values copies. */
async function compareHeld(a: Archive, fresh: Archive, held: Held[], seed: number): Promise<void> {
  const fc = fresh.cursor();
  const bits = new BigUint64Array(1);
  const bitsF = new Float64Array(bits.buffer);
  let updates = 0;
  let others = 0;
  let bytesSeen = 0;
  for (const h of held) {
    let u = 0;
    let o = 0;
    for (let i = 0; i < h.ts.length; i++) {
      const b = await fc.next();
      expect(b?.ts, `batch ${i} (PAYLOAD_BUFFER_SEED=${seed})`).toBe(h.ts[i]);
      expect(b?.updates.length).toBe(h.counts[i]);
      for (const [path, want] of b!.updates) {
        expect(a.paths[h.ids[u] as number], `update ${updates}`).toBe(path);
        let got: Value;
        if (o < h.otherAt.length && h.otherAt[o] === u) {
          got = h.others[o++] as Value;
          others++;
        } else {
          got = h.nums[u] as number;
        }
        if (typeof want === 'number' && typeof got === 'number') {
          bitsF[0] = want;
          const w64 = bits[0];
          bitsF[0] = got;
          expect(bits[0], `update ${updates} of ${path}: number bits (PAYLOAD_BUFFER_SEED=${seed})`).toBe(w64);
        } else {
          expect(valueDiff(want, got), `update ${updates} of ${path} (PAYLOAD_BUFFER_SEED=${seed})`).toBeUndefined();
          for (const b of [...bytesIn(want), ...bytesIn(got)]) {
            expect(ownCopy(b), `update ${updates} of ${path}: bytes of their own`).toBe(true);
            bytesSeen++;
          }
        }
        u++;
        updates++;
      }
    }
    expect(o).toBe(h.otherAt.length);
  }
  expect(await fc.next()).toBeNull();
  expect(updates).toBeGreaterThan(50_000);
  expect(others).toBeGreaterThan(30_000);
  expect(bytesSeen).toBeGreaterThan(5_000);
}

describe('the reused payload buffer of column reads', () => {
  it('leaves every earlier block read through it intact, bit for bit, while later blocks are read', async () => {
    const seed = scheduleSeed('PAYLOAD_BUFFER_SEED', 'payload buffer');
    const dir = await recordArchive(seed);
    const a = await Archive.open(dir, { readonly: true });
    const fresh = await Archive.open(dir, { readonly: true });
    dirs.push(a, fresh);

    // The blocks are LZ4 and several: the buffer is used, and reused.
    const f = a.files[0]!;
    const t = a.table(f);
    const rows: BlockRow[] = [];
    for (let di = 0; di < t.deltas.length; di++) rows.push(t.delta(di));
    const frames = await Promise.all(rows.map((row) => a.readBytes(f, row.offset, row.frameBytes)));
    const lz4 = frames.filter((fr) => fr[5] === Codec.LZ4).length;
    expect(lz4, 'LZ4 delta blocks').toBeGreaterThanOrEqual(4);
    const firstLz4 = frames.findIndex((fr) => fr[5] === Codec.LZ4);
    const nextLz4 = frames.findIndex((fr, i) => i > firstLz4 && fr[5] === Codec.LZ4);
    // Both read once first, so that the buffer has grown to the larger and the next calls reuse it.
    a.payloadOf(f, rows[firstLz4]!, frames[firstLz4]!);
    a.payloadOf(f, rows[nextLz4]!, frames[nextLz4]!);
    const view = a.payloadOf(f, rows[firstLz4]!, frames[firstLz4]!);
    const copy = Buffer.from(view);
    a.payloadOf(f, rows[nextLz4]!, frames[nextLz4]!);
    expect(Buffer.from(view).equals(copy), 'a view held from payloadOf shows the next block (the buffer is reused)').toBe(false);

    // Every view of nextColumns held: its non-number values as handed out, the rest copied.
    // Counted: blocks read through payloadOf, and those the column reader gave back to the codec (readBlock, a buffer of their own).
    let viaBuffer = 0;
    let viaCodec = 0;
    const payloadOf = a.payloadOf.bind(a);
    const readBlock = a.readBlock.bind(a);
    a.payloadOf = (...args) => (viaBuffer++, payloadOf(...args));
    a.readBlock = (...args) => (viaCodec++, readBlock(...args));
    const held: Held[] = [];
    const c = a.cursor();
    for (let v = await c.nextColumns(); v; v = await c.nextColumns()) held.push(hold(v));

    expect(viaBuffer, 'blocks read through payloadOf').toBe(rows.length);
    expect(viaCodec, 'blocks the column reader gave back').toBe(0);

    // Now, with every later block read, all of it against a fresh read of another instance.
    await compareHeld(a, fresh, held, seed);
  });

  it('leaves them intact too when the frames are read span after span into one reused buffer (readBytesInto)', async () => {
    const seed = scheduleSeed('PAYLOAD_BUFFER_SEED', 'read-ahead buffer');
    const dir = await recordArchive(seed);
    const a = await Archive.open(dir, { readonly: true });
    const fresh = await Archive.open(dir, { readonly: true });
    dirs.push(a, fresh);
    const f = a.files[0]!;
    const t = a.table(f);
    const size = (await stat(join(dir, f.name))).size;

    // readBytesInto reads what readBytes reads, fewer bytes where the file ends, and refuses a buffer too small.
    const r = rng(seed);
    const buf = new Uint8Array(1 << 16);
    for (let i = 0; i < 50; i++) {
      const offset = Math.floor(r() * size);
      const length = Math.floor(r() * buf.length);
      const got = await a.readBytesInto(f, offset, length, buf);
      const want = await a.readBytes(f, offset, length);
      expect(got).toBe(Math.min(length, size - offset));
      expect(Buffer.from(buf.subarray(0, got)).equals(want)).toBe(true);
    }
    await expect(a.readBytesInto(f, 0, 10, new Uint8Array(9))).rejects.toThrow(RangeError);

    // As a cursor would read ahead: spans of consecutive frames (at most 64 KB, at least one
    // frame) into one buffer, each frame's payload through payloadOf, decoded at once by the
    // column reader, the views held while the next spans overwrite the buffer.
    const builder = new ColumnBatchesBuilder();
    const sel = { keep: null, dropEmpty: false };
    const held: Held[] = [];
    let span = new Uint8Array(0);
    const codecs = { none: 0, lz4: 0 };
    for (let di = 0; di < t.deltas.length; ) {
      const first = t.delta(di);
      let end = first.offset + first.frameBytes;
      let dj = di + 1;
      for (; dj < t.deltas.length; dj++) {
        const row = t.delta(dj);
        if (row.offset + row.frameBytes - first.offset > 64 * 1024) break;
        end = row.offset + row.frameBytes;
      }
      if (span.length < end - first.offset) span = new Uint8Array(end - first.offset);
      expect(await a.readBytesInto(f, first.offset, end - first.offset, span)).toBe(end - first.offset);
      for (; di < dj; di++) {
        const row = t.delta(di);
        const frame = span.subarray(row.offset - first.offset, row.offset - first.offset + row.frameBytes);
        if (frame[5] === Codec.NONE) codecs.none++;
        if (frame[5] === Codec.LZ4) codecs.lz4++;
        const v = builder.fill(a.payloadOf(f, row, frame), row.firstTs, row.batches, a.paths.length, 0, sel);
        expect(v, `block ${di} read by the column reader`).toBeDefined();
        held.push(hold(v!));
      }
    }
    expect(codecs.none, 'blocks stored as they are (payloads that are views of the span)').toBeGreaterThan(3);
    expect(codecs.lz4).toBeGreaterThan(3);
    await compareHeld(a, fresh, held, seed);
  });
});
