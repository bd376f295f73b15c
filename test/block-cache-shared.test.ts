/**
 * The shared block cache hands out a block a reader still holds instead of decoding a copy
 * (storage/block-cache.ts): more readers than the cache has room for, spread over the
 * archive, share one decoded copy of each block (memory = distinct blocks held, not
 * readers). Blocks nobody holds are collected; forgotten weak entries are bounded; a file's
 * blocks are dropped with it; a damaged block still fails every reader.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import { BlockCache } from '../storage/block-cache.js';
import { Archive } from '../storage/archive.js';
import type { DecodedBatches } from '../storage/codec/payload.js';
import type { RawBatch } from '../storage/cursor.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { readAll } from './helpers/replay.js';
import { tmpDir } from './helpers/tmp.js';
import { until } from './helpers/until.js';
import { rng } from './helpers/workload.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const limits = STORAGE_LIMITS as { -readonly [K in keyof typeof STORAGE_LIMITS]: number };
const saved = { ...limits };
afterEach(() => Object.assign(limits, saved));

function block(n: number, tag: number): DecodedBatches {
  return { ts: Float64Array.of(tag), counts: Uint32Array.of(n), ids: new Uint32Array(n), values: Array.from({ length: n }, () => tag) };
}

/** A loader that counts its calls and makes a fresh block each time. */
function loader(n: number): { calls: number; load: (tag: number) => () => Promise<DecodedBatches> } {
  const l = { calls: 0, load: (tag: number) => () => {
    l.calls++;
    return Promise.resolve(block(n, tag));
  } };
  return l;
}

describe('BlockCache', () => {
  it('gives a block evicted from the cache but still held by a reader instead of loading it again', async () => {
    const c = new BlockCache(30);
    const l = loader(9);
    const held = await c.get('1:0', l.load(0));
    for (let i = 1; i <= 5; i++) await c.get(`1:${i}`, l.load(i));
    expect(l.calls).toBe(6);
    // 1:0 left the cache (three blocks of 10 fit), and the reader above still holds it.
    const again = await c.get('1:0', l.load(100));
    expect(again).toBe(held);
    expect(l.calls).toBe(6);
    expect(c.peek('1:0')).toBe(held);
    // Back at the cache's recent end: three more loads do not evict it from the cache either.
    for (let i = 6; i <= 7; i++) await c.get(`1:${i}`, l.load(i));
    expect(await c.get('1:0', l.load(200))).toBe(held);
    expect(l.calls).toBe(8);
  });

  it('blocks held by readers, evicted and revived over and over, leave one registration per weak entry (no growth)', async () => {
    const c = new BlockCache(30, 16);
    const l = loader(9);
    // Eight blocks held by readers, room for three in the cache: every get below evicts one
    // held block and revives another.
    const held: DecodedBatches[] = [];
    for (let i = 0; i < 8; i++) held.push(await c.get(`1:${i}`, l.load(i)));
    const big = await c.get('2:0', () => Promise.resolve(block(40, 99)));
    for (let pass = 0; pass < 500; pass++) {
      for (let i = 0; i < 8; i++) expect(await c.get(`1:${i}`, l.load(1000 + i))).toBe(held[i]);
      // Too large for the cache: forgotten again at every get while held.
      expect(await c.get('2:0', () => Promise.resolve(block(40, 98)))).toBe(big);
    }
    expect(l.calls).toBe(8);
    const w = c.weakEntries;
    expect(w.entries).toBeLessThanOrEqual(16);
    expect(w.entries).toBeGreaterThan(0);
    expect(w.registrations).toBe(w.entries);
  });

  it('a block too large for the cache is shared while held, too', async () => {
    const c = new BlockCache(10);
    const l = loader(50);
    const held = await c.get('2:0', l.load(0));
    expect(await c.get('2:0', l.load(1))).toBe(held);
    expect(l.calls).toBe(1);
  });

  it('loads anew a block nobody holds any more, once it is collected', async () => {
    const c = new BlockCache(30);
    const l = loader(9);
    const first = new WeakRef(await c.get('1:0', l.load(0)));
    for (let i = 1; i <= 5; i++) await c.get(`1:${i}`, l.load(i));
    // Collected at some GC after this job; the weak entry then goes too.
    await until(() => {
      gc();
      return first.deref() === undefined;
    }, 10_000, 'the evicted block to be collected');
    const again = await c.get('1:0', l.load(7));
    expect(again.ts[0]).toBe(7);
    expect(l.calls).toBe(7);
  });

  it('forgets the oldest evictions past its bound on weak entries', async () => {
    const c = new BlockCache(10, 2);
    const l = loader(9);
    const held = [await c.get('1:0', l.load(0)), await c.get('1:1', l.load(1)), await c.get('1:2', l.load(2)), await c.get('1:3', l.load(3))];
    // 1:3 is cached; 1:0, 1:1, 1:2 evicted in that order, and only two weak entries kept.
    expect(await c.get('1:2', l.load(12))).toBe(held[2]);
    expect(await c.get('1:1', l.load(11))).toBe(held[1]);
    expect(l.calls).toBe(4);
    expect((await c.get('1:0', l.load(10))).ts[0]).toBe(10);
    expect(l.calls).toBe(5);
    expect(held.length).toBe(4);
  });

  it('drops a file\'s evicted blocks with its cached ones, every generation (keys seq.gen:offset)', async () => {
    const c = new BlockCache(10);
    const l = loader(9);
    const held = [await c.get('1.0:0', l.load(0)), await c.get('2.0:0', l.load(1)), await c.get('1.1:64', l.load(2)), await c.get('11.0:0', l.load(4))];
    c.dropFile(1);
    expect(c.peek('1.0:0')).toBeUndefined();
    expect(c.peek('1.1:64')).toBeUndefined();
    expect(c.peek('2.0:0')).toBe(held[1]);
    expect(c.peek('11.0:0')).toBe(held[3]);
    expect((await c.get('1.0:0', l.load(3))).ts[0]).toBe(3);
    expect(l.calls).toBe(5);
  });

  it('a load that fails keeps nothing: every reader fails alike, and the next one loads again', async () => {
    const c = new BlockCache(30);
    let calls = 0;
    const failing = (): Promise<DecodedBatches> => {
      calls++;
      return Promise.reject(new Error('damaged'));
    };
    await expect(Promise.all([c.get('1:0', failing), c.get('1:0', failing)])).rejects.toThrow('damaged');
    expect(calls).toBe(1);
    await expect(c.get('1:0', failing)).rejects.toThrow('damaged');
    expect(calls).toBe(2);
    expect(c.peek('1:0')).toBeUndefined();
  });
});

describe('cursors over more blocks than the cache holds', () => {
  it('share one decoded copy of each block they hold, and read the same batches as a lone cursor', async () => {
    const SEED = Number(process.env.BLOCK_CACHE_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`block-cache-shared: seed ${SEED} (replay with BLOCK_CACHE_SEED=${SEED})`);
    limits.blockUpdatesTarget = 1000;
    const dir = await tmpDir('tapedeck-block-cache-');
    const w = await Archive.open(dir, { imageFrequencyBytes: 64 * 1024 * 1024 });
    const r = rng(SEED);
    const t0 = 1_763_000_000_000_000;
    // 16 blocks of 1000 updates (100 batches of 10), 1 s a batch.
    for (let i = 0; i < 1600; i++) w.writer!.append(Array.from({ length: 10 }, (_, j) => [`/d${j}`, Math.round(r() * 10_000) / 10] as [string, number]), t0 + i * 1_000_000);
    await w.close();
    // Room for 3 of the 16 blocks: read in turn, as paced sessions are, LRU alone would miss every time.
    limits.decodedCacheUpdatesMax = 3 * 1001;
    const a = await Archive.open(dir, { readonly: true });
    try {
      const want = await readAll(a.cursor());
      const blocks = 8;
      const readers = 4;
      const cursors = Array.from({ length: blocks * readers }, () => a.cursor());
      // Reader j of block b starts inside it, after its batch 10.
      for (const [i, c] of cursors.entries()) await c.seek({ ts: t0 + ((i % blocks) * 2 * 100 + 10) * 1_000_000 });
      const got: RawBatch[][] = cursors.map(() => []);
      for (let step = 0; step < 3; step++) {
        for (const [i, c] of cursors.entries()) got[i]!.push((await c.nextRaw())!);
      }
      // The third batch each read comes from its block decoded in full: one copy per block.
      for (let i = 0; i < cursors.length; i++) {
        const b = got[i]![2]!;
        const first = got[i % blocks]![2]!;
        expect(b.values, `reader ${i}`).toBe(first.values);
        expect(b.ids).toBe(first.ids);
      }
      for (const [i, bs] of got.entries()) {
        const k = (i % blocks) * 200 + 11;
        bs.forEach((b, s) => {
          const w = want[k + s]!;
          expect(b.ts).toBe(w.ts);
          expect(b.values.slice(b.from, b.to)).toEqual(w.updates.map((u) => u[1]));
        });
      }
    } finally {
      await a.close();
    }
  });
});
