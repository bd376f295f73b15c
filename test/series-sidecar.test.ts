/**
 * Per-series sidecars of sealed files (storage/series-index/): reads through them give
 * exactly what the block scan gives (seeded random archives with hostile values), a damaged
 * sidecar is never used (every region of it damaged in turn), a build killed with SIGKILL
 * leaves nothing that is used, and a file evicted by retention loses its sidecar.
 */
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Archive } from '../storage/index.js';
import { ColdStorage, type ColdEvent } from '../storage/cold.js';
import { readSeries, seriesCacheOf } from '../storage/series-read.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { sidecarDir, sidecarPath } from '../storage/series-index/build.js';
import { CHUNK_ABSOLUTE_TIMES, CHUNK_LZ4, CHUNK_REGULAR_TIMES, chunkSeed, decodeChunk, encodeChunk } from '../storage/series-index/chunk.js';
import { decodeHeader, decodeIndex, HEADER_BYTES, SIDECAR_VERSION, versionOf } from '../storage/series-index/format.js';
import { crc32c } from '../storage/codec/crc.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { Value } from '../protocol/value.js';
import { xorByte } from './helpers/damage.js';
import { until } from './helpers/until.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { STALE_NAN } from './helpers/nan.js';
import { exactValue } from './helpers/values.js';
import { storageLimitsForTests } from './helpers/storage-limits.js';

const OTHER_NAN = new Float64Array(new BigUint64Array([0x7ff8000000001234n]).buffer)[0] as number;
const PATHS = 30;
const { limits, saved, cleanup } = storageLimitsForTests();

const exact = exactValue;

/** Numeric paths with every hostile float; every 7th path mixes in text and booleans (not covered); every 5th has nulls. */
function valueOf(rand: () => number, i: number, k: number): Value {
  const r = rand();
  if (i % 7 === 6) return r < 0.3 ? `text ${k}` : r < 0.4 ? k % 2 === 0 : k;
  if (i % 5 === 4 && r < 0.1) return null;
  if (r < 0.03) return STALE_NAN;
  if (r < 0.05) return NaN;
  if (r < 0.06) return OTHER_NAN;
  if (r < 0.07) return -0;
  if (r < 0.08) return r < 0.075 ? Infinity : -Infinity;
  if (r < 0.09) return Number.MAX_VALUE * (rand() < 0.5 ? 1 : -1);
  if (r < 0.1) return 5e-324;
  return i % 3 === 0 ? k * 3 + i : i % 3 === 1 ? Math.round(rand() * 1e6) / 100 : rand() * 1e9;
}

/** Three rotated files and `current`, blocks of 1..4 batches, paths in random subsets (some paths only in later files). */
async function build(seed: number, dir?: string): Promise<{ a: Archive; firstUs: number; lastUs: number }> {
  const rand = rng(seed);
  const a = await Archive.open(dir ?? (await tmpDir()), { flushIntervalMs: 0 });
  const w = a.writer!;
  let ts = 1_700_000_000_000_000;
  const firstUs = ts + 1;
  let k = 0;
  for (const [file, blocks] of [40, 9, 25, 6].entries()) {
    const visible = file === 0 ? 20 : PATHS;
    for (let b = 0; b < blocks; b++) {
      const n = 1 + Math.floor(rand() * 4);
      for (let j = 0; j < n; j++) {
        // Now and then several batches in one millisecond, or one microsecond apart.
        ts += rand() < 0.1 ? 1 : 1000 + Math.floor(rand() * 15_000);
        const updates: Array<[string, Value]> = [];
        for (let i = 0; i < visible; i++) if (rand() < 0.7) updates.push([`/s/${i}`, valueOf(rand, i, k)]);
        w.append(updates, ts);
        k++;
      }
      await w.flush();
    }
    if (file < 3) await w.rotate();
  }
  return { a, firstUs, lastUs: ts };
}

/** Per path id, [ts, exact value] of what readSeries gives. */
async function read(a: Archive, ids: readonly number[], fromUs: number, toUs: number, sidecars: boolean): Promise<Map<number, Array<[number, unknown]>>> {
  const out = new Map<number, Array<[number, unknown]>>();
  for await (const pieces of readSeries(a, ids, fromUs, toUs, { sidecars })) {
    for (const { id, run, from, to } of pieces) {
      if (!out.has(id)) out.set(id, []);
      for (let i = from; i < to; i++) out.get(id)?.push([run.ts[i] as number, exact(run.num ? (run.num[i] as number) : (run.values?.[i] as Value))]);
    }
  }
  return out;
}

async function builtStore(a: Archive): Promise<ReturnType<typeof seriesIndexOf>> {
  const store = await startSeriesIndex(a);
  await store.whenIdle();
  return store;
}

const allIds = (a: Archive): number[] => a.paths.map((_, id) => id);

/**
 * Every sealed file's sidecar holds its chunks path by path (a series is one read): each
 * path's chunks in slice order, each right after the one before, and each path right after
 * the path before it, from the header to the index. Returns the most slices a path spans.
 */
async function expectPathByPath(a: Archive): Promise<number> {
  let most = 0;
  for (const f of a.files.filter((x) => x.sealed)) {
    const bytes = await readFile(sidecarPath(a, f.name));
    const id = { archiveId: a.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: a.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs! };
    const h = decodeHeader(bytes, id, bytes.length);
    const ix = decodeIndex(bytes.subarray(h.indexOffset), h);
    let at = HEADER_BYTES;
    for (let i = 0; i < ix.ids.length; i++) {
      const from = ix.chunkStart[i] as number;
      const to = ix.chunkStart[i + 1] as number;
      most = Math.max(most, to - from);
      for (let c = from; c < to; c++) {
        expect(ix.offset[c], `${f.name} path ${ix.ids[i]} chunk ${c - from}`).toBe(at);
        if (c > from) expect(ix.slice[c]).toBeGreaterThan(ix.slice[c - 1] as number);
        at += ix.bytes[c] as number;
      }
    }
    expect(at, `${f.name}: the chunks end where the index starts`).toBe(h.indexOffset);
  }
  return most;
}

describe('per-series sidecars', () => {
  it('read random paths and ranges exactly as the block scan does (NaN payloads, -0, ±Inf, nulls; text paths from the blocks)', async () => {
    const seed = scheduleSeed('SIDECAR_SEED', 'sidecar-equal');
    const rand = rng(seed + 1);
    limits.seriesIndexSliceUpdatesMax = 97; // many slices, so paths have many chunks
    const { a, firstUs, lastUs } = await build(seed);
    cleanup.push(() => a.close());
    const store = await builtStore(a);
    expect(store.stats.built).toBe(3);
    expect((await readdir(sidecarDir(a))).sort()).toEqual(a.files.filter((f) => f.sealed).map((f) => `${f.name}.sidx`).sort());
    const whole = await read(a, allIds(a), firstUs - 1, lastUs, false);
    const blocksBefore = seriesCacheOf(a).blocksRead;
    expect(await read(a, allIds(a), firstUs - 1, lastUs, true), `seed ${seed}`).toEqual(whole);
    // Only `current` and the text paths were read from blocks: fewer blocks than the whole archive.
    expect(seriesCacheOf(a).blocksRead - blocksBefore).toBeLessThan(a.files.reduce((n, f) => n + a.table(f).deltas.length, 0));
    expect(store.stats.reads).toBeGreaterThan(0);
    for (let round = 0; round < 40; round++) {
      const ids = allIds(a).filter(() => rand() < 0.2);
      const span = lastUs - firstUs;
      const fromUs = firstUs + Math.floor(rand() * span) - (round % 4 === 0 ? span : 0);
      const toUs = fromUs + Math.floor(rand() * span * (round % 2 === 0 ? 0.1 : 1));
      const want = await read(a, ids, fromUs, toUs, false);
      expect(await read(a, ids, fromUs, toUs, true), `round ${round} cold (seed ${seed})`).toEqual(want);
      expect(await read(a, ids, fromUs, toUs, true), `round ${round} cached (seed ${seed})`).toEqual(want);
    }
    expect(store.stats.damaged).toBe(0);
    await expectPathByPath(a);
  });

  it('lay each path\'s chunks one after the other, in slice order, also when the copy goes in many groups or a path alone is past a group', async () => {
    const seed = scheduleSeed('SIDECAR_SEED', 'sidecar-layout');
    limits.seriesIndexSliceUpdatesMax = 97;
    limits.seriesIndexWriteBytes = 700; // groups of a few paths; some paths' chunks alone exceed it
    const { a, firstUs, lastUs } = await build(seed);
    cleanup.push(() => a.close());
    await builtStore(a);
    const slices = await expectPathByPath(a);
    expect(slices, 'paths hold chunks of several slices').toBeGreaterThan(3);
    expect(await read(a, allIds(a), firstUs - 1, lastUs, true), `seed ${seed}`).toEqual(await read(a, allIds(a), firstUs - 1, lastUs, false));
  });

  it('never use a damaged sidecar: damage in the header, a chunk or the index, or a cut file, falls back to the blocks, and it is built again', async () => {
    const seed = scheduleSeed('SIDECAR_SEED', 'sidecar-damage');
    const rand = rng(seed + 2);
    limits.seriesIndexSliceUpdatesMax = 97;
    const dir = await tmpDir();
    const built = await build(seed, dir);
    await builtStore(built.a);
    const name = (built.a.files.find((f) => f.sealed) as { name: string }).name;
    const file = sidecarPath(built.a, name);
    const f0 = built.a.files.find((f) => f.sealed);
    const id = { archiveId: built.a.archiveId, seq: f0!.seq, name, committedBytes: f0!.committedBytes, deltaBlocks: built.a.table(f0!).deltas.length, firstTs: f0!.firstTs!, lastTs: f0!.lastTs! };
    const ids = allIds(built.a);
    const want = await read(built.a, ids, built.firstUs - 1, built.lastUs, false);
    await built.a.close();
    const pristine = await readFile(file);
    const h = decodeHeader(pristine, id, pristine.length);
    const ix = decodeIndex(pristine.subarray(h.indexOffset), h);
    const inChunk = (): number => {
      const c = Math.floor(rand() * ix.offset.length);
      return (ix.offset[c] as number) + Math.floor(rand() * (ix.bytes[c] as number));
    };
    const damages: Array<{ what: string; apply: () => Promise<void> }> = [];
    // Every header field, its CRC and the magic.
    for (const at of [0, 7, 8, 12, 16, 24, 32, 40, 48, 56, 60, 64, 68, 72, 76, 80, 84, HEADER_BYTES - 1]) damages.push({ what: `header byte ${at}`, apply: () => xorByte(file, at, 1 << Math.floor(rand() * 8)) });
    for (let i = 0; i < 8; i++) {
      const at = inChunk();
      damages.push({ what: `chunk byte ${at}`, apply: () => xorByte(file, at, 1 << Math.floor(rand() * 8)) });
    }
    for (let i = 0; i < 6; i++) {
      const at = h.indexOffset + Math.floor(rand() * h.indexBytes);
      damages.push({ what: `index byte ${at}`, apply: () => xorByte(file, at, 1 << Math.floor(rand() * 8)) });
    }
    for (const at of [0, 40, inChunk(), h.indexOffset + Math.floor(h.indexBytes / 2), pristine.length - 1]) damages.push({ what: `cut at ${at}`, apply: () => truncate(file, at) });
    damages.push({ what: 'bytes appended', apply: async () => writeFile(file, Buffer.concat([pristine, Buffer.from([0])])) });
    for (const d of damages) {
      await writeFile(file, pristine);
      await d.apply();
      const a = await Archive.open(dir, { readonly: true });
      try {
        expect(await read(a, ids, built.firstUs - 1, built.lastUs, true), `${d.what} (seed ${seed})`).toEqual(want);
        expect(seriesIndexOf(a).stats.damaged, `${d.what} found (seed ${seed})`).toBe(1);
      } finally {
        await a.close();
      }
    }
    // Opened for writing, the damaged sidecar is found, deleted and built again.
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => a.close());
    const store = await builtStore(a);
    expect(await read(a, ids, built.firstUs - 1, built.lastUs, true)).toEqual(want);
    await store.whenIdle();
    expect(store.stats.damaged).toBe(1);
    expect(Buffer.compare(await readFile(file), pristine)).toBe(0);
  });

  it('a build killed with SIGKILL at random moments leaves no sidecar that is used half written', async () => {
    const seed = scheduleSeed('SIDECAR_SEED', 'sidecar-kill');
    const rand = rng(seed + 3);
    const dir = await tmpDir();
    const built = await build(seed, dir);
    const ids = allIds(built.a);
    const want = await read(built.a, ids, built.firstUs - 1, built.lastUs, false);
    await built.a.close();
    for (let round = 0; round < 4; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', resolve('test/helpers/sidecar-build-child.ts'), dir, '2000'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const exited = new Promise<void>((done) => child.once('exit', () => done()));
      let out = '';
      // Round 0 and 2: killed just after a temporary file appears; the others at a random time.
      const killAfterTemp = round % 2 === 0;
      const delayMs = Math.floor(rand() * (killAfterTemp ? 30 : 3000));
      console.log(`round ${round}: kill ${killAfterTemp ? 'after TEMP +' : 'at'} ${delayMs} ms`);
      const timer = killAfterTemp ? undefined : setTimeout(() => child.kill('SIGKILL'), delayMs);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (killAfterTemp && out.includes('TEMP ')) setTimeout(() => child.kill('SIGKILL'), delayMs);
      });
      await exited;
      clearTimeout(timer);
      const a = await Archive.open(dir, { readonly: true });
      try {
        // Whatever is under a final name is whole; a temporary file is never read.
        for (const n of await readdir(sidecarDir(a)).catch(() => [] as string[])) {
          if (!n.endsWith('.sidx')) continue;
          const f = a.files.find((e) => `${e.name}.sidx` === n);
          expect(f, n).toBeDefined();
          const bytes = await readFile(join(sidecarDir(a), n));
          const h = decodeHeader(bytes, { archiveId: a.archiveId, seq: f!.seq, name: f!.name, committedBytes: f!.committedBytes, deltaBlocks: a.table(f!).deltas.length, firstTs: f!.firstTs!, lastTs: f!.lastTs! }, bytes.length);
          decodeIndex(bytes.subarray(h.indexOffset), h);
        }
        expect(await read(a, ids, built.firstUs - 1, built.lastUs, true), `round ${round} (seed ${seed}): ${out}`).toEqual(want);
        expect(seriesIndexOf(a).stats.damaged).toBe(0);
      } finally {
        await a.close();
      }
    }
    // The next start removes temporary files and builds what is missing.
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => a.close());
    await builtStore(a);
    expect((await readdir(sidecarDir(a))).sort()).toEqual(a.files.filter((f) => f.sealed).map((f) => `${f.name}.sidx`).sort());
    expect(await read(a, ids, built.firstUs - 1, built.lastUs, true)).toEqual(want);
  }, 60_000);

  it('a file evicted by retention loses its sidecar; one whose segment is gone is removed at start', async () => {
    const base = await tmpDir('tapedeck-sidecar-ret-');
    const cold = join(base, 'cold');
    await mkdir(cold);
    const dir = join(base, 'archive');
    let nowUs = 1_700_000_000_000_000;
    const a = await Archive.open(dir, { flushIntervalMs: 0, clockUs: () => nowUs });
    cleanup.push(() => a.close());
    const c = await ColdStorage.start(a, { hooks: { put: { cmd: resolve('test/fixtures/hooks/put-copy.sh'), args: [cold] } }, checkIntervalMs: 0, listIntervalMs: 0, retention: { maxAgeMs: 3_600_000, maxBytes: 0 } });
    cleanup.push(() => c.stop());
    const store = await startSeriesIndex(a, c);
    const names: string[] = [];
    for (const t of [nowUs, nowUs + 2 * 3_600_000_000]) {
      for (let i = 0; i < 100; i++) a.writer!.append([['/v', i], ['/w', i / 3]], t + i * 1000);
      const put = new Promise<ColdEvent>((done) => c.once('event', done));
      await a.writer!.rotate();
      names.push(((await put) as { name: string }).name);
    }
    await store.whenIdle();
    expect((await readdir(sidecarDir(a))).sort()).toEqual(names.map((n) => `${n}.sidx`).sort());
    nowUs += 3 * 3_600_000_000;
    const evicted = new Promise<ColdEvent>((done) => c.on('event', (e: ColdEvent) => e.type === 'evict' && done(e)));
    await c.check();
    expect(await evicted).toMatchObject({ type: 'evict', name: names[0] });
    await until(async () => !(await readdir(sidecarDir(a))).includes(`${names[0]}.sidx`), 5000, 'the evicted file\'s sidecar removed');
    expect(await readdir(sidecarDir(a))).toEqual([`${names[1]}.sidx`]);
    // A sidecar left for a segment that is gone (removed while the server was down) goes at the next start.
    await c.stop();
    await a.close();
    await writeFile(join(dir, 'series-index', '2020-01-01T00:00:00.000000Z.sidx'), 'orphan');
    await writeFile(join(dir, 'series-index', `${names[1]}.sidx.tmp`), 'half');
    const b = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => b.close());
    await startSeriesIndex(b);
    expect(await readdir(sidecarDir(b))).toEqual([`${names[1]}.sidx`]);
  });

  it('a build whose file is evicted meanwhile gives up without fetching it back; a file fetched back builds its sidecar on first read', async () => {
    const base = await tmpDir('tapedeck-sidecar-evict-');
    const cold = join(base, 'cold');
    await mkdir(cold);
    const dir = join(base, 'archive');
    let nowUs = 1_700_000_000_000_000;
    const a = await Archive.open(dir, { flushIntervalMs: 0, clockUs: () => nowUs });
    cleanup.push(() => a.close());
    const c = await ColdStorage.start(a, {
      hooks: { put: { cmd: resolve('test/fixtures/hooks/put-copy.sh'), args: [cold] }, get: { cmd: resolve('test/fixtures/hooks/get-copy.sh'), args: [cold] } },
      checkIntervalMs: 0,
      listIntervalMs: 0,
      retention: { maxAgeMs: 3_600_000, maxBytes: 0 },
    });
    cleanup.push(() => c.stop());
    const events: ColdEvent[] = [];
    c.on('event', (e: ColdEvent) => events.push(e));
    limits.seriesIndexBuildUpdatesPerS = 200; // a build of 800 updates lasts seconds: the eviction comes during it
    const store = await startSeriesIndex(a, c);
    for (let b = 0; b < 20; b++) {
      for (let i = 0; i < 20; i++) a.writer!.append([['/v', i], ['/w', b + i / 3]], nowUs + (b * 20 + i) * 1000);
      await a.writer!.flush();
    }
    await a.writer!.rotate();
    const name = (a.files.find((f) => f.sealed) as { name: string }).name;
    await until(() => events.some((e) => e.type === 'put'), 10_000, 'the rotated file shipped');
    nowUs += 3 * 3_600_000_000;
    // A check finding the build in the middle of a read (the file's handle in use) leaves the
    // file for the next check: checked again until it is evicted, well within the build's seconds.
    await until(async () => {
      await c.check();
      return events.some((e) => e.type === 'evict');
    }, 3_000, 'the file evicted during its build');
    expect(events.filter((e) => e.type === 'evict')).toHaveLength(1);
    await store.whenIdle();
    expect(store.stats.built).toBe(0);
    expect(store.stats.buildFailures).toBe(1);
    expect(events.filter((e) => e.type === 'fetch')).toHaveLength(0);
    expect(a.files.find((f) => f.name === name)?.location).toBe('remote');
    expect(await readdir(sidecarDir(a))).toEqual([]);
    // A query fetches it back (the get hook) and asks for its sidecar, built in the background.
    limits.seriesIndexBuildUpdatesPerS = saved.seriesIndexBuildUpdatesPerS;
    const id = a.pathIds.get('/v') as number;
    const first = await read(a, [id], 0, Number.MAX_SAFE_INTEGER, true);
    expect(events.filter((e) => e.type === 'fetch')).toHaveLength(1);
    await until(() => store.stats.built === 1, 10_000, 'the fetched file\'s sidecar built');
    await store.whenIdle();
    expect(await readdir(sidecarDir(a))).toEqual([`${name}.sidx`]);
    expect(await read(a, [id], 0, Number.MAX_SAFE_INTEGER, true)).toEqual(first);
    expect(first.get(id)).toHaveLength(400);
  });
  it('compressed chunks: a steady scrape\'s chunks are LZ4-compressed with no time column and read exactly; damage in their compressed bytes falls back; a decompression bomb header is refused', async () => {
    const seed = scheduleSeed('SIDECAR_SEED', 'sidecar-lz4');
    const rand = rng(seed + 3);
    limits.seriesIndexSliceUpdatesMax = 2_000;
    const dir = await tmpDir();
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    const t0 = 1_700_000_000_000_000;
    const steps = 600;
    // Counters and gauges by formula (compressible), hostile floats now and then, times every 15 s.
    for (let k = 0; k < steps; k++) {
      const updates: Array<[string, Value]> = [];
      for (let i = 0; i < 40; i++) {
        const hostile = rand() < 0.01 ? valueOf(rand, i % 7 === 6 ? 0 : i, k) : undefined;
        updates.push([`/p/${i}`, hostile ?? (i % 2 === 0 ? k * ((i % 7) + 1) + ((k * 31 + i) % 5) : 20 + ((i * 13 + k * 7) % 100) / 10)]);
      }
      a.writer!.append(updates, t0 + k * 15_000_000);
      if (k % 50 === 49) await a.writer!.flush();
    }
    await a.writer!.rotate();
    const store = await builtStore(a);
    expect(store.stats.built).toBe(1);
    const ids = allIds(a);
    const want = await read(a, ids, t0, t0 + steps * 15_000_000, false);
    expect(await read(a, ids, t0, t0 + steps * 15_000_000, true), `seed ${seed}`).toEqual(want);
    expect(store.stats.fallbacks + store.stats.damaged).toBe(0);
    const f = a.files.find((e) => e.sealed)!;
    const file = sidecarPath(a, f.name);
    const id = { archiveId: a.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: a.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs! };
    await a.close();
    const pristine = await readFile(file);
    const h = decodeHeader(pristine, id, pristine.length);
    expect(h.indexRawBytes, 'the index is deflated').toBeGreaterThan(h.indexBytes);
    const ix = decodeIndex(pristine.subarray(h.indexOffset), h);
    const chunk = (c: number): Buffer => pristine.subarray(ix.offset[c], (ix.offset[c] as number) + (ix.bytes[c] as number));
    const compressed = [...ix.offset.keys()].filter((c) => ((chunk(c)[4] as number) & CHUNK_LZ4) !== 0);
    expect(compressed.length, 'some chunks are compressed').toBeGreaterThan(10);
    expect([...ix.offset.keys()].filter((c) => ((chunk(c)[4] as number) & CHUNK_REGULAR_TIMES) !== 0).length, 'steady times need no column').toBe(ix.offset.length);
    // Damage inside a compressed chunk's stored bytes (its length or its LZ4 block): the read falls back to the blocks.
    for (let round = 0; round < 6; round++) {
      const c = compressed[Math.floor(rand() * compressed.length)] as number;
      const at = (ix.offset[c] as number) + 5 + Math.floor(rand() * ((ix.bytes[c] as number) - 5));
      await writeFile(file, pristine);
      await xorByte(file, at, 1 << Math.floor(rand() * 8));
      const r = await Archive.open(dir, { readonly: true });
      try {
        expect(await read(r, ids, t0, t0 + steps * 15_000_000, true), `damage at ${at} (seed ${seed})`).toEqual(want);
        expect(seriesIndexOf(r).stats.damaged, `damage at ${at} found (seed ${seed})`).toBe(1);
      } finally {
        await r.close();
      }
    }
    // A bomb: a compressed chunk declaring 4 GiB, its CRC32C made valid. Refused by the bound
    // on its declared length (before anything is allocated for it), and the read falls back.
    const c = compressed[0] as number;
    const bomb = Buffer.from(chunk(c));
    bomb.writeUInt32LE(0xffffffff, 5);
    const place = { id: ix.ids[[...ix.ids.keys()].find((p) => (ix.chunkStart[p + 1] as number) > c) as number] as number, slice: ix.slice[c] as number };
    bomb.writeUInt32LE(crc32c(bomb.subarray(4), chunkSeed(place)), 0);
    expect(() => decodeChunk(bomb, ix.n[c] as number, ix.first[c] as number, ix.last[c] as number, place)).toThrow(/declares 4294967295 bytes, more than/);
    const bombed = Buffer.from(pristine);
    bomb.copy(bombed, ix.offset[c]);
    await writeFile(file, bombed);
    const before = process.memoryUsage().arrayBuffers;
    const r = await Archive.open(dir, { readonly: true });
    try {
      expect(await read(r, ids, t0, t0 + steps * 15_000_000, true), `bomb (seed ${seed})`).toEqual(want);
      expect(seriesIndexOf(r).stats.damaged).toBe(1);
      expect(process.memoryUsage().arrayBuffers - before, 'no 4 GiB buffer').toBeLessThan(1 << 30);
    } finally {
      await r.close();
    }
  });

  it('a sidecar of another format version is never read, and is built again at start', async () => {
    const seed = scheduleSeed('SIDECAR_SEED', 'sidecar-version');
    limits.seriesIndexSliceUpdatesMax = 97;
    const dir = await tmpDir();
    const built = await build(seed, dir);
    await builtStore(built.a);
    const ids = allIds(built.a);
    const want = await read(built.a, ids, built.firstUs - 1, built.lastUs, false);
    const names = built.a.files.filter((f) => f.sealed).map((f) => f.name);
    await built.a.close();
    // Version 1's header: 72 bytes, its own CRC32C at 68; the version field says 1.
    for (const name of names) {
      const b = await readFile(sidecarPath(built.a, name));
      b.writeUInt32LE(1, 8);
      b.writeUInt32LE(crc32c(b.subarray(0, 68)), 68);
      await writeFile(sidecarPath(built.a, name), b);
      expect(versionOf(b)).toBe(1);
    }
    const ro = await Archive.open(dir, { readonly: true });
    try {
      expect(await read(ro, ids, built.firstUs - 1, built.lastUs, true), `seed ${seed}`).toEqual(want);
      expect(seriesIndexOf(ro).stats.damaged, 'each old sidecar is refused').toBe(names.length);
    } finally {
      await ro.close();
    }
    const a = await Archive.open(dir, { flushIntervalMs: 0 });
    cleanup.push(() => a.close());
    const store = await builtStore(a);
    expect(store.stats.built, 'rebuilt at start').toBe(names.length);
    for (const name of names) expect(versionOf(await readFile(sidecarPath(a, name)))).toBe(SIDECAR_VERSION);
    expect(await read(a, ids, built.firstUs - 1, built.lastUs, true)).toEqual(want);
    expect(store.stats.damaged).toBe(0);
  });
  it('chunk times: regular ones cost no column, others are offsets from the first, or the times themselves when an offset would not be exact', () => {
    const cases: Array<{ ts: number[]; flag: number }> = [
      { ts: [1_700_000_000_000_000], flag: CHUNK_REGULAR_TIMES },
      { ts: Array.from({ length: 50 }, (_, i) => 1_700_000_000_000_000 + i * 15_000_000), flag: CHUNK_REGULAR_TIMES },
      { ts: [1_700_000_000_000_000, 1_700_000_000_000_001, 1_700_000_000_000_001, 1_700_000_015_000_000], flag: 0 },
      // -1e16 then 0.3: 0.3 - first rounds to 1e16, and 1e16 + first is 0, not 0.3.
      { ts: [-1e16, 0.3, 0.3, 7.25], flag: CHUNK_ABSOLUTE_TIMES },
    ];
    for (const { ts, flag } of cases) {
      const w = new ByteWriter(64);
      const vals: Value[] = ts.map((_, i) => (i % 2 === 0 ? STALE_NAN : -0));
      encodeChunk(w, Float64Array.from(ts), vals, Uint32Array.from(ts.keys()), 0, ts.length, { id: 0, slice: 0 });
      const buf = w.buf.subarray(0, w.pos);
      expect((buf[4] as number) & (CHUNK_REGULAR_TIMES | CHUNK_ABSOLUTE_TIMES), String(ts)).toBe(flag);
      const d = decodeChunk(buf, ts.length, ts[0] as number, ts[ts.length - 1] as number, { id: 0, slice: 0 });
      expect([...d.ts], String(ts)).toEqual(ts);
      expect([...(d.num as Float64Array)].map(exact)).toEqual(vals.map(exact));
    }
  });
});
