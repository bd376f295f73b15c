/**
 * Files shipped to cold storage and fetched back, and a rebuilt catalog, with images and
 * path dictionaries cut into parts (cac490d; parts of 4 KiB in this process): the state at
 * every sampled time reads the same as the batches give, through the catalog's rows, from a
 * catalog rebuilt from the files (reindex) and from the cold store's list (no catalog). A
 * cold copy whose middle image part is damaged gives each state right, or an error, or a
 * reported problem: never an image short of that part's paths in silence.
 */
import { cp, mkdir, open, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { ColdStorage } from '../storage/cold.js';
import { reindexArchive } from '../storage/reindex.js';
import { scanBlocks } from '../storage/segment-file.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { BlockType } from '../storage/codec/frame.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch, Value } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';
import { xorByte } from './helpers/damage.js';
import { HOOKS, recordEvicted } from './helpers/cold-shipped.js';
import { lowerPartBytes, partsBatch } from './helpers/s12-parts-workload.js';

lowerPartBytes();
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 16 * 1024 };
const PER_FILE = 120;
const all: Batch[] = Array.from({ length: 3 * PER_FILE }, (_, i) => partsBatch(i));

function key(m: Map<string, Value>): string {
  return JSON.stringify([...m.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
}

function stateOf(batches: readonly Batch[], before: number | undefined): string {
  const m = new Map<string, Value>();
  for (const b of batches) {
    if (before !== undefined && b.ts >= before) break;
    for (const [p, v] of b.updates) m.set(p, v);
  }
  return key(m);
}

/** The runs of IMAGE frames of one time in a file, as [offset, frameBytes] lists. */
async function imageRuns(file: string): Promise<Array<Array<[number, number]>>> {
  const fh = await open(file, 'r');
  try {
    const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
    const runs: Array<Array<[number, number]>> = [];
    let prev: (typeof blocks)[number] | undefined;
    for (const b of blocks) {
      if (b.type === BlockType.IMAGE) {
        if (prev?.type === BlockType.IMAGE && prev.lastTs === b.lastTs) runs.at(-1)!.push([b.offset, b.frameBytes]);
        else runs.push([[b.offset, b.frameBytes]]);
      }
      prev = b;
    }
    return runs;
  } finally {
    await fh.close();
  }
}

/**
 * Opens `dir` with the cold store's get (and list) hooks and checks the state at every
 * tenth batch and at the end: right (all batches, or the batches served when a damaged file
 * is cut), or an error with a code, or a problem the archive reports.
 */
async function checkStates(dir: string, cold: string, listed: boolean, where: string): Promise<{ right: number; failed: number }> {
  const a = await Archive.open(dir, STORAGE);
  const hooks = { get: { cmd: join(HOOKS, 'get-copy.sh'), args: [cold] }, ...(listed ? { list: { cmd: join(HOOKS, 'list-dir.sh'), args: [cold] } } : {}) };
  const c = await ColdStorage.start(a, { hooks, checkIntervalMs: 0, listIntervalMs: 0 });
  let right = 0;
  let failed = 0;
  try {
    if (listed) await c.refreshList();
    const served: Batch[] = [];
    try {
      const cur = a.cursor();
      for (let b = await cur.next(); b; b = await cur.next()) served.push(b);
    } catch (err) {
      if (!isTapedeckError(err)) throw err;
    }
    for (let k = 0; k <= all.length; k += 10) {
      const cur = a.cursor();
      try {
        await cur.seek(k >= all.length ? 'end' : { ts: all[k]!.ts });
        const state = key(await cur.state());
        const next = await cur.next();
        if (state !== stateOf(served, next?.ts)) expect(state, `${where}: state at batch ${k} (next ${next?.ts}), problems ${JSON.stringify(a.problems)}`).toBe(stateOf(all, next?.ts));
        right++;
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        failed++;
      }
    }
  } finally {
    await c.stop();
    await a.close();
  }
  return { right, failed };
}

describe('images and dictionaries in parts, shipped, fetched back and reindexed', () => {
  it('every state reads the same through the catalog, after a reindex, and from the cold store\'s list', async () => {
    const base = await tmpDir('tapedeck-parts-cold-');
    const dir = join(base, 'archive');
    const cold = join(base, 'cold');
    await mkdir(cold, { recursive: true });
    await recordEvicted(dir, cold, all, { perFile: PER_FILE, rotations: 2, flushEvery: 20, storage: STORAGE });
    const names = (await readdir(cold)).sort();
    expect(names.length).toBe(2);
    for (const n of names) expect((await imageRuns(join(cold, n))).some((run) => run.length >= 3), n).toBe(true);

    const total = Math.ceil(all.length / 10) + 1;
    expect(await checkStates(dir, cold, false, 'catalog')).toEqual({ right: total, failed: 0 });
    await (await reindexArchive(dir)).close();
    expect(await checkStates(dir, cold, true, 'reindexed')).toEqual({ right: total, failed: 0 });
    for (const n of await readdir(dir)) if (n.startsWith('catalog.sqlite')) await unlink(join(dir, n));
    expect(await checkStates(dir, cold, true, 'no catalog, listed')).toEqual({ right: total, failed: 0 });
  }, 120_000);

  it('a cold copy with a damaged middle image part: each state right, an error or a reported problem, never short in silence', async () => {
    const base = await tmpDir('tapedeck-parts-cold-dmg-');
    const pristine = join(base, 'pristine');
    await mkdir(join(pristine, 'cold'), { recursive: true });
    await recordEvicted(join(pristine, 'archive'), join(pristine, 'cold'), all, { perFile: PER_FILE, rotations: 2, flushEvery: 20, storage: STORAGE });
    const victim = (await readdir(join(pristine, 'cold'))).sort()[1]!;
    const runs = (await imageRuns(join(pristine, 'cold', victim))).filter((run) => run.length >= 3);
    expect(runs.length).toBeGreaterThan(0);
    const work = join(base, 'work');
    for (const [ri, run] of runs.entries()) {
      const [offset, bytes] = run[run.length >> 1]!;
      for (const [what, at] of [['CRC', offset + 40], ['payload', offset + 48 + ((bytes - 48) >> 1)]] as const) {
        for (const listed of [false, true]) {
          await rm(work, { recursive: true, force: true });
          await cp(pristine, work, { recursive: true });
          await xorByte(join(work, 'cold', victim), at, 0x40);
          if (listed) for (const n of await readdir(join(work, 'archive'))) if (n.startsWith('catalog.sqlite')) await unlink(join(work, 'archive', n));
          await checkStates(join(work, 'archive'), join(work, 'cold'), listed, `image ${ri} middle part ${what}, ${listed ? 'listed' : 'indexed'}`);
        }
      }
    }
  }, 180_000);
});
