/**
 * Selective reads (storage/series-read.ts, and cursors with `selective`) give exactly what a
 * full read gives for the same paths: random path subsets and time ranges over a real
 * archive of rotated files and a `current` still being written, paths absent from some
 * blocks and files, every kind of value (NaN bits included), read cold and again from the
 * series cache, and after more blocks were committed into a chunk still filling.
 */
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/index.js';
import { readSeries, seriesCacheOf } from '../storage/series-read.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import type { Batch, Value } from '../protocol/value.js';
import { historyChunks } from '../server/history.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { STALE_NAN } from './helpers/nan.js';

const PATHS = 24;

/** A value that compares by its exact form: numbers by their bits (a NaN's payload is data). */
const bits = new Float64Array(1);
function exact(v: Value): unknown {
  if (typeof v !== 'number') return v;
  // Stored straight into the typed array: an array literal [v] may canonicalise a NaN.
  bits[0] = v;
  return `f64:${new BigUint64Array(bits.buffer)[0]?.toString(16)}`;
}

function valueOf(rand: () => number, i: number, k: number): Value {
  const r = rand();
  if (i % 6 === 5) return r < 0.5 ? `text ${k}` : r < 0.7 ? null : r < 0.85 ? k % 2 === 0 : k; // mixed path
  if (r < 0.03) return STALE_NAN;
  if (r < 0.05) return NaN;
  if (r < 0.06) return null;
  return i % 2 === 0 ? k * 3 + i : Math.round(rand() * 1e6) / 100;
}

interface Built {
  archive: Archive;
  firstUs: number;
  lastUs: number;
  batches: number;
}

/**
 * Three rotated files and `current`; blocks cut by commits every 1..4 batches (the first
 * file holds more than two chunks). Paths /s/16.. first appear in the second file, and each
 * batch holds a random subset of the paths defined so far.
 */
async function build(seed: number): Promise<Built> {
  const rand = rng(seed);
  const archive = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
  const w = archive.writer!;
  let ts = 1_700_000_000_000_000;
  const firstUs = ts + 1000;
  let k = 0;
  const fileBlocks = [STORAGE_LIMITS.seriesChunkBlocks * 2 + 5, 9, 20, 7];
  for (let file = 0; file < fileBlocks.length; file++) {
    const visible = file === 0 ? 16 : PATHS;
    for (let b = 0; b < (fileBlocks[file] as number); b++) {
      const n = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < n; j++) {
        ts += 1000 + Math.floor(rand() * 5000);
        const updates: Array<[string, Value]> = [];
        for (let i = 0; i < visible; i++) if (rand() < 0.6) updates.push([`/s/${i}`, valueOf(rand, i, k)]);
        w.append(updates, ts);
        k++;
      }
      await w.flush();
    }
    if (file < fileBlocks.length - 1) await w.rotate();
  }
  return { archive, firstUs, lastUs: ts, batches: k };
}

/** Every committed batch, read whole. */
async function fullRead(a: Archive): Promise<Batch[]> {
  const c = a.cursor();
  const out: Batch[] = [];
  for (let b = await c.next(); b; b = await c.next()) out.push(b);
  return out;
}

/** Per path, [ts, exact value] of its updates with time in [fromUs, toUs], from a full read. */
function expected(all: Batch[], paths: readonly string[], fromUs: number, toUs: number): Map<string, Array<[number, unknown]>> {
  const want = new Set(paths);
  const out = new Map<string, Array<[number, unknown]>>();
  for (const b of all) {
    if (b.ts < fromUs || b.ts > toUs) continue;
    for (const [p, v] of b.updates) {
      if (!want.has(p)) continue;
      if (!out.has(p)) out.set(p, []);
      out.get(p)?.push([b.ts, exact(v)]);
    }
  }
  return out;
}

async function selective(a: Archive, ids: readonly number[], fromUs: number, toUs: number): Promise<Map<string, Array<[number, unknown]>>> {
  const out = new Map<string, Array<[number, unknown]>>();
  let lastTs = -Infinity;
  for await (const pieces of readSeries(a, ids, fromUs, toUs)) {
    let chunkFirst = Infinity;
    for (const { id, run, from, to } of pieces) {
      const p = a.paths[id] as string;
      if (!out.has(p)) out.set(p, []);
      for (let i = from; i < to; i++) {
        const v = run.num ? (run.num[i] as number) : (run.values?.[i] as Value);
        out.get(p)?.push([run.ts[i] as number, exact(v)]);
        chunkFirst = Math.min(chunkFirst, run.ts[i] as number);
      }
    }
    // Chunks come in time order.
    expect(chunkFirst).toBeGreaterThan(lastTs);
    for (const { run, to } of pieces) lastTs = Math.max(lastTs, run.ts[to - 1] as number);
  }
  return out;
}

function pick<T>(rand: () => number, xs: readonly T[], n: number): T[] {
  const copy = [...xs];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, n);
}

describe('selective reads', () => {
  it('read random path subsets and ranges as a full read does, cold and from the series cache', async () => {
    const seed = scheduleSeed('SERIES_READ_SEED', 'series-read');
    const rand = rng(seed);
    const { archive: a, firstUs, lastUs } = await build(seed);
    try {
      expect(a.files.length).toBe(4);
      const all = await fullRead(a);
      const ids = a.paths.map((_, id) => id);
      const cache = seriesCacheOf(a);
      for (let round = 0; round < 30; round++) {
        const subset = pick(rand, ids, 1 + Math.floor(rand() * 6));
        // Whole archive, a random range, or one inside a single file.
        const span = lastUs - firstUs;
        const fromUs = round % 3 === 0 ? firstUs - 1 : firstUs + Math.floor(rand() * span);
        const toUs = round % 3 === 0 ? lastUs : fromUs + Math.floor(rand() * (span / (round % 3 === 1 ? 1 : 8)));
        const want = expected(all, subset.map((id) => a.paths[id] as string), fromUs, toUs);
        const hitsBefore = cache.hits;
        expect(await selective(a, subset, fromUs, toUs), `round ${round} cold`).toEqual(want);
        expect(await selective(a, subset, fromUs, toUs), `round ${round} again`).toEqual(want);
        if (round % 3 === 0) expect(cache.hits).toBeGreaterThan(hitsBefore);
      }
      // A path first recorded in the second file, over the whole archive.
      const late = a.pathIds.get('/s/20') as number;
      expect(await selective(a, [late], firstUs, lastUs)).toEqual(expected(all, ['/s/20'], firstUs, lastUs));
    } finally {
      await a.close();
    }
  });

  it('see blocks committed after a read into a chunk still filling, reading only those', async () => {
    const a = await Archive.open(await tmpDir(), { flushIntervalMs: 0 });
    try {
      const w = a.writer!;
      let ts = 1_000_000;
      const commitBlocks = async (n: number): Promise<void> => {
        for (let b = 0; b < n; b++) {
          w.append([['/x', b]], (ts += 1000));
          await w.flush();
        }
      };
      await commitBlocks(3);
      const id = a.pathIds.get('/x') as number;
      const count = async (): Promise<number> => {
        let n = 0;
        for await (const pieces of readSeries(a, [id], 0, Number.MAX_SAFE_INTEGER)) for (const p of pieces) n += p.to - p.from;
        return n;
      };
      const cache = seriesCacheOf(a);
      expect(await count()).toBe(3);
      expect(cache.blocksRead).toBe(3);
      await commitBlocks(3);
      expect(await count()).toBe(6);
      // Only the three new blocks were read: the cached run was extended.
      expect(cache.blocksRead).toBe(6);
      expect(await count()).toBe(6);
      expect(cache.blocksRead).toBe(6);
      // Past a full chunk: the full one is cached, the new tail still read.
      await commitBlocks(STORAGE_LIMITS.seriesChunkBlocks);
      expect(await count()).toBe(6 + STORAGE_LIMITS.seriesChunkBlocks);
      await commitBlocks(1);
      expect(await count()).toBe(7 + STORAGE_LIMITS.seriesChunkBlocks);
    } finally {
      await a.close();
    }
  });

  it('pass over ids they do not know, duplicates and empty ranges', async () => {
    const { archive: a, firstUs, lastUs } = await build(7);
    try {
      const all = await fullRead(a);
      const got = await selective(a, [0, 0, -1, 1.5, Number.NaN, a.paths.length, 2 ** 40, 3], firstUs, lastUs);
      expect(got).toEqual(expected(all, [a.paths[0] as string, a.paths[3] as string], firstUs, lastUs));
      expect(await selective(a, [0], lastUs, firstUs)).toEqual(new Map());
      expect(await selective(a, [], firstUs, lastUs)).toEqual(new Map());
    } finally {
      await a.close();
    }
  });

  it('a selective cursor returns the batches a filtered cursor returns that hold a wanted path', async () => {
    const seed = scheduleSeed('SERIES_READ_SEED', 'selective-cursor');
    const rand = rng(seed + 1);
    const { archive: a, firstUs, lastUs } = await build(seed);
    try {
      for (let round = 0; round < 12; round++) {
        const globs = pick(rand, a.paths, 1 + Math.floor(rand() * 4));
        const at = round === 0 ? 'beginning' : { ts: firstUs + Math.floor(rand() * (lastUs - firstUs)) };
        const read = async (selectiveRead: boolean): Promise<Array<[number, Array<[string, unknown]>]>> => {
          const c = a.cursor({ filter: globs, selective: selectiveRead });
          await c.seek(at);
          const out: Array<[number, Array<[string, unknown]>]> = [];
          for (let b = await c.next(); b; b = await c.next()) if (b.updates.length > 0) out.push([b.ts, b.updates.map(([p, v]) => [p, exact(v)])]);
          return out;
        };
        const full = await read(false);
        // From the beginning every picked path is ahead; from a random time it may not be
        // (a path recorded only early), and then both reads must be empty alike.
        if (round === 0) expect(full.length).toBeGreaterThan(0);
        expect(await read(true), `round ${round}: ${globs.join(' ')} (seed ${seed})`).toEqual(full);
      }
    } finally {
      await a.close();
    }
  });

  it('history of explicit paths reads them selectively and answers as a filtered read', async () => {
    const seed = scheduleSeed('SERIES_READ_SEED', 'selective-history');
    const rand = rng(seed + 2);
    const { archive: a, firstUs, lastUs } = await build(seed);
    try {
      const all = await fullRead(a);
      for (let round = 0; round < 5; round++) {
        const globs = pick(rand, a.paths, 1 + Math.floor(rand() * 3));
        const fromUs = firstUs + Math.floor(rand() * ((lastUs - firstUs) / 2));
        const toUs = fromUs + Math.floor(rand() * (lastUs - fromUs));
        let csv = '';
        for await (const chunk of historyChunks(a, { globs, fromUs, toUs, format: 'csv' })) csv += chunk as string;
        const rows = csv.trim().split('\n').slice(1);
        const want = all.filter((b) => b.ts >= fromUs && b.ts <= toUs).flatMap((b) => b.updates.filter(([p]) => globs.includes(p)).map(([p]) => `${b.ts},${p}`));
        expect(rows.map((r) => { const [ts, , p] = r.split(','); return `${ts},${p}`; }), `round ${round}`).toEqual(want);
      }
    } finally {
      await a.close();
    }
  });
});
