/**
 * Per-series sidecar chunks in the wrong place. Series scraped together share their times,
 * so two paths' chunks of one slice often have the same sample count, first and last time,
 * and (values of the same kind) the same length: each chunk's own CRC32C and its index
 * entry's count and times cannot tell one from the other. A chunk's bytes found where
 * another's should be (a misdirected write or read, of the sidecar or of the build's
 * scratch file, or a chunk copied over another) must never be read as that other path's:
 * the read falls back to the blocks, which give the recorded values, and the sidecar counts
 * as damaged.
 *
 * AUDIT10_SIDECAR_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { open, readFile, writeFile } from 'node:fs/promises';
import { Archive } from '../storage/index.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { buildSidecar, sidecarPath } from '../storage/series-index/build.js';
import { decodeHeader, decodeIndex, HEADER_BYTES, type SidecarIndex } from '../storage/series-index/format.js';
import type { FileEntry } from '../storage/file-list.js';
import type { Value } from '../protocol/value.js';
import { xorByte } from './helpers/damage.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { readSeriesExact } from './helpers/series-exact.js';
import { storageLimitsForTests } from './helpers/storage-limits.js';

const SEED = scheduleSeed('AUDIT10_SIDECAR_SEED', 'audit10-sidecar-chunks');
const PATHS = 8;
const SCRAPES = 240;
const STEP_US = 15_000_000;
const T0 = 1_700_000_000_000_000;
const { limits, cleanup } = storageLimitsForTests();

/**
 * One sealed file of scrapes (every path in every batch, every 15 s) and the open one. Each
 * path holds one value of its own for a run of scrapes, then another: chunks of the same
 * slice have the same count, times and length, and different values.
 */
async function scrapes(dir: string): Promise<void> {
  const r = rng(SEED);
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  const level = Array.from({ length: PATHS }, () => Math.floor(r() * 1000));
  for (let k = 0; k < SCRAPES; k++) {
    if (k % 60 === 0) for (let i = 0; i < PATHS; i++) level[i] = 1000 + Math.floor(r() * 9000);
    a.writer!.append(
      Array.from({ length: PATHS }, (_, i): [string, Value] => [`/m/${i}`, level[i] as number]),
      T0 + k * STEP_US,
    );
    if (k % 20 === 19) await a.writer!.flush();
  }
  await a.writer!.rotate();
  a.writer!.append([['/m/0', 1]], T0 + SCRAPES * STEP_US);
  await a.close();
}

function read(a: Archive, sidecars: boolean): Promise<Map<number, Array<[number, unknown]>>> {
  return readSeriesExact(a, T0 - 1, T0 + SCRAPES * STEP_US, sidecars);
}

function sealed(a: Archive): FileEntry {
  return a.files.find((f) => f.sealed) as FileEntry;
}

function indexOf(a: Archive, bytes: Uint8Array): SidecarIndex {
  const f = sealed(a);
  const h = decodeHeader(bytes, { archiveId: a.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: a.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs! }, bytes.length);
  return decodeIndex(bytes.subarray(h.indexOffset), h);
}

/** Chunk positions c, d of two different paths in one slice that no check of count, times or length tells apart, and whose bytes differ. */
function lookAlikes(ix: SidecarIndex, bytes: Uint8Array, rand: () => number): Array<[number, number]> {
  const pathOf = new Uint32Array(ix.offset.length);
  for (let p = 0; p < ix.ids.length; p++) for (let c = ix.chunkStart[p] as number; c < (ix.chunkStart[p + 1] as number); c++) pathOf[c] = p;
  const chunk = (c: number): Uint8Array => bytes.subarray(ix.offset[c] as number, (ix.offset[c] as number) + (ix.bytes[c] as number));
  const pairs: Array<[number, number]> = [];
  for (let c = 0; c < ix.offset.length; c++) {
    for (let d = 0; d < ix.offset.length; d++) {
      const same = pathOf[c] !== pathOf[d] && ix.slice[c] === ix.slice[d] && ix.n[c] === ix.n[d] && ix.first[c] === ix.first[d] && ix.last[c] === ix.last[d] && ix.bytes[c] === ix.bytes[d];
      if (same && Buffer.compare(chunk(c), chunk(d)) !== 0) pairs.push([c, d]);
    }
  }
  // A few of them, chosen by the seed.
  for (let i = pairs.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [pairs[i], pairs[j]] = [pairs[j] as [number, number], pairs[i] as [number, number]];
  }
  return pairs.slice(0, 4);
}

async function copyWithin(file: string, from: number, to: number, length: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(length);
    await fh.read(b, 0, length, from);
    await fh.write(b, 0, length, to);
  } finally {
    await fh.close();
  }
}

/** The sealed file's sidecar built by buildSidecar; `duringBuild` is awaited after each block read (the scratch file then holds the slices written so far). */
async function buildOnce(dir: string, duringBuild?: (scratch: string) => Promise<void>): Promise<Uint8Array> {
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  try {
    const path = sidecarPath(a, sealed(a).name);
    await buildSidecar(a, sealed(a), { pace: async () => duringBuild?.(`${path}.slices.tmp`) });
    return await readFile(path);
  } finally {
    await a.close();
  }
}

/** Reads with the sidecar as it is on disk: what the blocks give, and whether the sidecar was found damaged. */
async function readThrough(dir: string): Promise<{ got: Map<number, Array<[number, unknown]>>; damaged: number }> {
  const a = await Archive.open(dir, { readonly: true });
  try {
    return { got: await read(a, true), damaged: seriesIndexOf(a).stats.damaged };
  } finally {
    await a.close();
  }
}

describe('a sidecar chunk where another path\'s should be', () => {
  it('is never read as that path\'s: copied over it in the sidecar, or in the build\'s scratch file', async () => {
    limits.seriesIndexSliceUpdatesMax = 60 * PATHS;
    const dir = await tmpDir('tapedeck-sidecar-chunks-');
    await scrapes(dir);
    const ro = await Archive.open(dir, { readonly: true });
    const want = await read(ro, false);
    const file = sidecarPath(ro, sealed(ro).name);
    await ro.close();
    const pristine = await buildOnce(dir);
    const ix = await (async () => {
      const a = await Archive.open(dir, { readonly: true });
      cleanup.push(() => a.close());
      return indexOf(a, pristine);
    })();
    const rand = rng(SEED + 1);
    const pairs = lookAlikes(ix, pristine, rand);
    expect(pairs.length, 'chunks no count, time or length tells apart').toBeGreaterThan(0);
    // The sound sidecar reads as the blocks.
    await writeFile(file, pristine);
    expect((await readThrough(dir)).got).toEqual(want);

    for (const [c, d] of pairs) {
      const what = `chunk ${d} (slice ${ix.slice[d]}) copied over chunk ${c} (seed ${SEED})`;
      await writeFile(file, pristine);
      await copyWithin(file, ix.offset[d] as number, ix.offset[c] as number, ix.bytes[c] as number);
      const r = await readThrough(dir);
      expect(r.got, what).toEqual(want);
      expect(r.damaged, what).toBe(1);
    }

    // In the scratch file, slices lie one after the other from HEADER_BYTES, each slice's chunks in path order.
    const scratchAt = (c: number): number => {
      let at = HEADER_BYTES;
      for (let e = 0; e < ix.offset.length; e++) if ((ix.slice[e] as number) < (ix.slice[c] as number) || (ix.slice[e] === ix.slice[c] && e < c)) at += ix.bytes[e] as number;
      return at;
    };
    for (const [c, d] of pairs.slice(0, 2)) {
      const what = `scratch: chunk ${d} copied over chunk ${c} during the build (seed ${SEED})`;
      let done = false;
      await buildOnce(dir, async (scratch) => {
        const size = await open(scratch, 'r').then(async (fh) => (await fh.stat().finally(() => fh.close())).size);
        const end = Math.max(scratchAt(c) + (ix.bytes[c] as number), scratchAt(d) + (ix.bytes[d] as number));
        if (done || size < end) return;
        await copyWithin(scratch, scratchAt(d), scratchAt(c), ix.bytes[c] as number);
        done = true;
      });
      expect(done, what).toBe(true);
      const r = await readThrough(dir);
      expect(r.got, what).toEqual(want);
      expect(r.damaged, what).toBe(1);
    }
    // A byte of the scratch flipped during the build is found as well.
    const flipAt = scratchAt(pairs[0]![0]) + Math.floor(rand() * (ix.bytes[pairs[0]![0]] as number));
    let flipped = false;
    await buildOnce(dir, async (scratch) => {
      const size = await open(scratch, 'r').then(async (fh) => (await fh.stat().finally(() => fh.close())).size);
      if (flipped || size <= flipAt) return;
      await xorByte(scratch, flipAt, 1 << Math.floor(rand() * 8));
      flipped = true;
    });
    expect(flipped).toBe(true);
    const r = await readThrough(dir);
    expect(r.got, `scratch byte ${flipAt} flipped (seed ${SEED})`).toEqual(want);
    expect(r.damaged, `scratch byte ${flipAt} flipped (seed ${SEED})`).toBe(1);
  }, 30_000);
});
