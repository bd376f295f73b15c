/**
 * The Node addon's payload encoder (native/tapedeck-node, docs/native.md) against the
 * TypeScript encoder: the same bytes for every block it takes, the TypeScript path for every
 * block it refuses, and archives written with and without it identical frame for frame.
 * scripts/install.sh builds the addon; a missing addon fails here (never skipped), unless
 * TAPEDECK_NATIVE_CODEC=off says to run without it.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ByteWriter } from '../storage/codec/bytes.js';
import { crc32c, crc32cInstalled, crc32cReference } from '../storage/codec/crc.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { BlockType, encodeFrame } from '../storage/codec/frame.js';
import { encodeNumberFrameNative, encodeNumberPayloadNative, installNativePayload, type NumberBlock, nativePayloadInstalled, type NativePayloadAddon } from '../storage/codec/native-payload.js';
import { encodeBatches, type FlatBatches } from '../storage/codec/payload-encode.js';
import { Archive } from '../storage/archive.js';
import { loadNativeCodec, nativeCodecBuilds, nativeCodecPath } from '../storage/native-codec-file.js';
import { verifyArchive } from '../storage/verify.js';
import type { Batch, Value } from '../protocol/value.js';
import { batchBlock, column, columnLength, hostile, Column, pick, type Rand } from './helpers/number-blocks.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { naiveState, plain, readAll, sorted } from './helpers/replay.js';
import { rng } from './helpers/workload.js';

const off = process.env.TAPEDECK_NATIVE_CODEC === 'off';
const path = nativeCodecPath();
const addon = path === undefined ? undefined : (createRequire(import.meta.url)(path) as NativePayloadAddon);

let current = addon;

/** Installs `a` (undefined: none) for the tests that follow. */
function use(a: NativePayloadAddon | undefined): void {
  current = a;
  installNativePayload(a);
}

/** encodeBatches with the addon in use or without any; a copy of the bytes. */
function encodeWith(native: boolean, b: FlatBatches, w = new ByteWriter(16)): Buffer {
  installNativePayload(native ? current : undefined);
  try {
    return Buffer.from(encodeBatches(b, w));
  } finally {
    installNativePayload(current);
  }
}

/**
 * A block of batches whose paths each follow one column shape (gauges, counters, sparse,
 * spikes, XOR-ish, noisy doubles, hostile bits): long columns take every number kind
 * (PACKED orders, DECIMAL_K, XOR, FLOAT64) through the whole payload.
 */
function shapedBlock(r: Rand): FlatBatches & { values: Float64Array } {
  const np = 1 + Math.floor(r() * (r() < 0.2 ? 400 : 40));
  const nb = 1 + Math.floor(r() * (r() < 0.2 ? 600 : 80));
  const paths = Array.from({ length: np }, (_, j) => (r() < 0.5 ? j : Math.floor(r() * 2 ** 20)));
  const cols = paths.map(() => column(r, Math.max(nb, columnLength(r))).col.values);
  const taken = new Uint32Array(np);
  const ts: number[] = [];
  const counts: number[] = [];
  const ids: number[] = [];
  const bytes: Uint8Array[] = [];
  let t = 1_763_000_000_000_000 + Math.floor(r() * 1e6);
  for (let i = 0; i < nb; i++) {
    t += pick(r, [1_000_000, 1_000_000, 1_000_000, 0, 1, Math.floor(r() * 1e6)]);
    const every = r() < 0.7;
    let n = 0;
    for (let p = 0; p < np; p++) {
      if (!every && r() < 0.5) continue;
      const col = cols[p] as Float64Array;
      const k = (taken[p] as number) % col.length;
      taken[p] = k + 1;
      ids.push(paths[p] as number);
      bytes.push(new Uint8Array(col.buffer, col.byteOffset + 8 * k, 8));
      n++;
    }
    if (n === 0) {
      ids.push(paths[0] as number);
      const c = new Column(1);
      hostile(r, c, 2);
      bytes.push(new Uint8Array(c.values.buffer, 0, 8));
      n = 1;
    }
    ts.push(t);
    counts.push(n);
  }
  const values = new Float64Array(ids.length);
  const all = new Uint8Array(values.buffer);
  bytes.forEach((b, j) => all.set(b, 8 * j)); // bits, not numbers: NaN payloads kept
  return { ts, counts, ids: Int32Array.from(ids), values, batchCount: nb, updateCount: ids.length };
}

function firstDifference(a: Buffer, b: Buffer): number {
  let at = 0;
  while (at < a.length && a[at] === b[at]) at++;
  return at;
}

afterAll(() => installNativePayload(loadNativeCodec().encoder === 'native' ? addon : undefined));

describe.skipIf(off)('native payload encoder', () => {
  it('is built by scripts/install.sh and in use for archives opened for writing', () => {
    expect(path, 'native/tapedeck-node/tapedeck_node.node is not built: bash scripts/install-native.sh').toBeDefined();
    expect(loadNativeCodec()).toMatchObject({ encoder: 'native' });
    // On x86-64 the x86-64-v3 build is made as well, and taken on a CPU that runs it.
    if (process.arch === 'x64') expect(nativeCodecBuilds().some((p) => p.endsWith('.x86-64-v3.node')) || !/\bavx2\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))).toBe(true);
    expect(nativePayloadInstalled()).toBe(true);
    // Its CRC32C answers codec/crc.ts's crc32c of bytes from then on.
    expect(crc32cInstalled()).toBe(true);
  });

  it.each(nativeCodecBuilds())('answers the CRC32C of @node-rs/crc32 for seeded bytes, lengths, seeds and views (%s)', (build) => {
    const seed = scheduleSeed('NATIVE_CRC_SEED', 'native CRC32C');
    const r = rng(seed);
    const a = createRequire(import.meta.url)(build) as NativePayloadAddon;
    const big = new Uint8Array(200_000);
    for (let i = 0; i < big.length; i++) big[i] = Math.floor(r() * 256);
    for (let i = 0; i < 3000; i++) {
      // Lengths around the folding strides and far past them, views at any offset.
      const len = i < 600 ? i : i < 2900 ? Math.floor(r() * 70_000) : 100_000 + Math.floor(r() * 100_000);
      const at = Math.floor(r() * (big.length - len + 1));
      const view = big.subarray(at, at + len);
      const s = i % 3 === 0 ? 0 : Math.floor(r() * 2 ** 32);
      const want = crc32cReference(view, s);
      if (a.crc32c(view, s) >>> 0 !== want || crc32c(view, s) !== want) expect.fail(`seed ${seed}: case ${i} (${len} bytes at ${at}, seed ${s}) differs`);
    }
    // A CRC continued over two pieces is the CRC of both.
    expect(a.crc32c(big.subarray(5000), a.crc32c(big.subarray(0, 5000), 0)) >>> 0).toBe(crc32cReference(big));
  });

  it.each(nativeCodecBuilds())('writes the bytes of the TypeScript encoder on seeded blocks of every number shape (%s)', (build) => {
    const seed = scheduleSeed('NATIVE_PAYLOAD_SEED', 'native payloads');
    const r = rng(seed);
    use(createRequire(import.meta.url)(build) as NativePayloadAddon);
    for (let i = 0; i < 400; i++) {
      const b = i % 2 === 0 ? shapedBlock(r) : batchBlock(r);
      const want = encodeWith(false, b);
      const got = encodeWith(true, b, new ByteWriter(r() < 0.5 ? 16 : 1 << 16));
      if (Buffer.compare(want, got) !== 0) {
        expect.fail(`block ${i} (seed ${seed}, ${b.batchCount} batches, ${b.updateCount} updates): first difference at byte ${firstDifference(want, got)} of ${want.length}`);
      }
      const direct = new ByteWriter(16);
      const raw = encodeNumberPayloadNative(b as NumberBlock, direct);
      expect(raw, `block ${i}: the addon took it`).toBeDefined();
      // The whole frame (LZ4 when it saves 1/16, else raw; CRC32C) as frame.ts writes it.
      const firstTs = b.ts[0] as number;
      const lastTs = Math.max(firstTs, b.ts[b.batchCount - 1] as number);
      const meta = { type: BlockType.DELTA, firstTs, lastTs, batches: b.batchCount, updates: b.updateCount };
      const frame = encodeNumberFrameNative(b as NumberBlock, firstTs, lastTs);
      const wantFrame = Buffer.from(encodeFrame(meta, want));
      if (frame === undefined || Buffer.compare(wantFrame, Buffer.from(frame)) !== 0) {
        expect.fail(`block ${i} (seed ${seed}): frame differs at byte ${frame === undefined ? 'none' : firstDifference(wantFrame, Buffer.from(frame))} of ${wantFrame.length}`);
      }
    }
    use(addon);
  });

  it('writes the same bytes after a block far past the usual size (its scratch given back)', () => {
    const r = rng(11);
    const big = 200_000; // past the addon's SCRATCH_KEEP_UPDATES (131 072)
    const block = (n: number): FlatBatches & { values: Float64Array } => ({
      ts: [1_763_000_000_000_000, 1_763_000_001_000_000],
      counts: [n - 1, 1],
      ids: Int32Array.from({ length: n }, (_, i) => (i * 7919) % (n + 13)),
      values: Float64Array.from({ length: n }, () => Math.floor(r() * 1e6) / 100),
      batchCount: 2,
      updateCount: n,
    });
    for (const b of [block(300), block(big), block(500), block(16_384), block(big + 1), block(2)]) {
      expect(encodeWith(true, b, new ByteWriter(1 << 16))).toEqual(encodeWith(false, b));
    }
  });

  it('leaves to the TypeScript encoder what it refuses, with the same answer', () => {
    const a = addon as NativePayloadAddon;
    const one = { ts: [1_763_000_000_000_000], counts: [2], ids: Int32Array.of(3, 9), values: Float64Array.of(1.5, NaN), batchCount: 1, updateCount: 2 };
    const refused: FlatBatches[] = [
      { ...one, ts: [1.5] }, // not an integer µs
      { ...one, ts: [2 ** 53] }, // past 2^52
      { ...one, ids: Int32Array.of(3, 2 ** 28) }, // a path id past the addon's column map
      { ...one, ts: [-(2 ** 52), 2 ** 52], counts: [1, 1], batchCount: 2 }, // a second difference past 2^52
    ];
    for (const b of refused) {
      const ts = Float64Array.from(b.ts as number[]);
      const counts = Uint32Array.from(b.counts as number[]);
      expect(a.encodeNumberPayload(ts, counts, b.ids as Int32Array, b.values as Float64Array, new Uint8Array(1024))).toBe(-1);
      expect(encodeWith(true, b)).toEqual(encodeWith(false, b));
    }
    // A frame whose times the header cannot hold exactly is refused as well.
    expect(a.encodeNumberFrame(Float64Array.of(5), Uint32Array.of(1), Int32Array.of(1), Float64Array.of(1), 5.5, 6)).toBeNull();
    expect(a.encodeNumberFrame(Float64Array.of(5), Uint32Array.of(1), Int32Array.of(1), Float64Array.of(1), 5, 2 ** 54)).toBeNull();
    expect(a.encodeNumberFrame(Float64Array.of(5), Uint32Array.of(1), Int32Array.of(1), Float64Array.of(1), 5, 5)).not.toBeNull();
    // Counts that do not add up, or do not match the timestamps, are refused, never read past.
    expect(a.encodeNumberPayload(Float64Array.of(1), Uint32Array.of(3), Int32Array.of(1, 2), Float64Array.of(1, 2), new Uint8Array(64))).toBe(-1);
    expect(a.encodeNumberPayload(Float64Array.of(1, 2), Uint32Array.of(2), Int32Array.of(1, 2), Float64Array.of(1, 2), new Uint8Array(64))).toBe(-1);
    expect(a.encodeNumberPayload(Float64Array.of(1), Uint32Array.of(2), Int32Array.of(1, 2), Float64Array.of(1), new Uint8Array(64))).toBe(-1);
    expect(a.encodeNumberPayload(Float64Array.of(1), Uint32Array.of(1), Int32Array.of(-1), Float64Array.of(1), new Uint8Array(64))).toBe(-1);
    // An output too small is not written; the answer says how much is needed.
    const ok = a.encodeNumberPayload(Float64Array.of(5), Uint32Array.of(2), Int32Array.of(1, 2), Float64Array.of(0.25, 7), new Uint8Array(4));
    expect(ok).toBeLessThan(-1);
    const room = new Uint8Array(-ok - 1);
    expect(a.encodeNumberPayload(Float64Array.of(5), Uint32Array.of(2), Int32Array.of(1, 2), Float64Array.of(0.25, 7), room)).toBe(room.length);
    expect(Buffer.from(room)).toEqual(encodeWith(false, { ts: [5], counts: [2], ids: Int32Array.of(1, 2), values: Float64Array.of(0.25, 7), batchCount: 1, updateCount: 2 }));
  });

  it('keeps the latest value of every path for images whatever its kinds, with and without the addon', async () => {
    const seed = scheduleSeed('NATIVE_PAYLOAD_SEED', 'native latest values');
    for (const native of [true, false]) {
      const r = rng(seed + 2);
      const dir = await tmpDir();
      const a = await Archive.open(dir, { imageFrequencyBytes: 1024, flushIntervalMs: 0, rotateSizeBytes: 64 * 1024 });
      installNativePayload(native ? addon : undefined);
      const w = a.writer!;
      const batches: Batch[] = [];
      let t = 1_763_000_000_000_000;
      for (let i = 0; i < 4000; i++) {
        t += 1000;
        const n = 1 + Math.floor(r() * 12);
        // Hot paths (several updates a block: its last value must win) and many cold ones (a
        // state then reads back to an image for them).
        const paths = [...new Set(Array.from({ length: n }, () => (r() < 0.5 ? `/hot${Math.floor(r() * 20)}` : `/cold${Math.floor(r() * 2000)}`)))];
        // Bursts: a path updated in three batches in a row, then never again (its value after
        // them comes from the next image: the last of the three).
        if (i % 100 < 3) paths.push(`/burst${Math.floor(i / 100)}`);
        // Now and then other kinds (strings, booleans, null) on hot paths, which soon hold
        // numbers again: the addon sets the latest values only while no path holds another kind.
        const other = r() < 0.04;
        if (other) paths.splice(0, paths.length, ...paths.filter((p) => p.startsWith('/hot')), '/hot0');
        const updates: Array<[string, Value]> = [...new Set(paths)].map((p) => [p, other ? pick(r, ['s' + String(i), true, null, 'x'.repeat(1 + (i % 50))]) : Math.floor(r() * 1e5) / 100]);
        if (other) w.append(updates, t);
        else w.appendColumns(Uint32Array.from(updates, ([p]) => w.pathId(p)), Float64Array.from(updates, ([, v]) => v as number), t);
        batches.push({ ts: t, updates });
        if (i % 40 === 39) await w.flush(); // small blocks, an image after each
      }
      await w.flush();
      const c = a.cursor();
      for (let k = 0; k < 60; k++) {
        const at = batches[0]!.ts + Math.floor(r() * (t - batches[0]!.ts + 1000));
        await c.seek({ ts: at });
        expect(plain(sorted(await c.state())), `native ${native}, seed ${seed}, state at ${at}`).toStrictEqual(plain(sorted(naiveState(batches, at))));
      }
      expect(a.files.length, 'rotations happened: files start with an image').toBeGreaterThan(2);
      await a.close();
    }
    installNativePayload(addon);
  });

  it('writes archives identical frame for frame to those of the TypeScript encoder, and they read back', async () => {
    const seed = scheduleSeed('NATIVE_PAYLOAD_SEED', 'native archives');
    const r = rng(seed + 1);
    const batches: Batch[] = [];
    let t = 1_763_000_000_000_000;
    for (let i = 0; i < 3000; i++) {
      t += 1000 + Math.floor(r() * 3) * 1000;
      const n = 1 + Math.floor(r() * 40);
      const updates: Batch['updates'] = [];
      for (let j = 0; j < n; j++) {
        const c = new Column(1);
        if (r() < 0.05) hostile(r, c, 2);
        else c.num(Math.floor(r() * 1e6) / 100);
        updates.push([`/dev/r${Math.floor(r() * 300)}/v`, (c.values[0] as number)]);
      }
      batches.push({ ts: t, updates });
    }
    const files: Buffer[] = [];
    for (const native of [true, false]) {
      installNativePayload(native ? addon : undefined);
      const dir = await tmpDir();
      const a = await Archive.open(dir, { imageFrequencyBytes: 8192, flushIntervalMs: 0 });
      installNativePayload(native ? addon : undefined); // open installs the addon once a process
      const w = a.writer!;
      const handle = new Map<string, number>();
      for (const [i, b] of batches.entries()) {
        const ids = Uint32Array.from(b.updates, ([p]) => handle.get(p) ?? handle.set(p, w.pathId(p)).get(p)!);
        w.appendColumns(ids, Float64Array.from(b.updates, ([, v]) => v as number), b.ts);
        if (i % 500 === 499) await w.flush();
      }
      await w.flush();
      const back = await readAll(a.cursor());
      expect(back.length).toBe(batches.length);
      for (const [i, b] of back.entries()) {
        expect(b.ts).toBe(batches[i]?.ts);
        b.updates.forEach(([p, v], j) => {
          const [wp, wv] = (batches[i] as Batch).updates[j] as [string, number];
          if (p !== wp || !Object.is(v, wv)) expect.fail(`batch ${i} update ${j} (seed ${seed}): ${p}=${String(v)}, want ${wp}=${String(wv)}`);
        });
      }
      await a.close();
      expect((await verifyArchive(dir)).ok).toBe(true);
      files.push((await readFile(join(dir, 'current'))).subarray(HEADER_BYTES));
    }
    installNativePayload(addon);
    expect(files[0]?.length).toBeGreaterThan(10_000);
    expect(firstDifference(files[0] as Buffer, files[1] as Buffer)).toBe(Math.max(files[0]!.length, files[1]!.length));
  });
});
