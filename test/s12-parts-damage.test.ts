/**
 * Damage to an archive whose images and path dictionaries are cut into parts (cac490d,
 * storage/frame-parts.ts): each header field and the payload of the first, a middle and the
 * last IMAGE part and of PATHS parts, one damage per copy, read through the catalog and
 * after a reindex. The archive never answers a wrong state in silence: every state read
 * either raises TPD_CORRUPT_BLOCK, tells onCorrupt, or equals the state the batches give.
 * And an image torn after its first parts (a file cut inside it, alone or with either
 * commit slot damaged, so that an open takes the whole parts back): the same.
 *
 * The part size is lowered in this process only (the limit is one constant of the storage
 * layer): parts of 2 KiB make a few hundred short values an image of many parts.
 * PARTS_SEED=<n> replays a run; the seed is printed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, open, readdir, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { reindexArchive } from '../storage/reindex.js';
import { verifyArchive } from '../storage/verify.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { scanBlocks } from '../storage/segment-file.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch, Update, Value } from '../protocol/value.js';
import { rng } from './helpers/workload.js';
import { xorByte } from './helpers/damage.js';

(STORAGE_LIMITS as { framePartBytesTarget: number }).framePartBytesTarget = 2048;

const SEED = Number(process.env.PARTS_SEED ?? 1212);
const OPTIONS = { imageFrequencyBytes: 8_000, flushIntervalMs: 0 };
const PATHS = 160;

let base: string;
let work: string;
const batches: Batch[] = [];

function key(m: Map<string, Value>): string {
  return JSON.stringify([...m.entries()].sort((x, y) => (x[0] < y[0] ? -1 : 1)));
}

/** The state after every batch of `of` before `ts` (undefined: after all). */
function truthBefore(ts: number | undefined, of: readonly Batch[] = batches): string {
  const m = new Map<string, Value>();
  for (const b of of) {
    if (ts !== undefined && b.ts >= ts) break;
    for (const [p, v] of b.updates) m.set(p, v);
  }
  return key(m);
}

interface Part {
  file: string;
  offset: number;
  frameBytes: number;
  name: string;
}

/** IMAGE parts (first, a middle one, last of each image of three parts or more) and PATHS parts of the base archive. */
async function parts(): Promise<Part[]> {
  const out: Part[] = [];
  for (const file of (await readdir(base)).filter((n) => n === 'current' || /^\d{4}-/.test(n))) {
    const fh = await open(join(base, file), 'r');
    try {
      const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
      for (let i = 0; i < blocks.length; ) {
        const b = blocks[i]!;
        let j = i + 1;
        while (j < blocks.length && blocks[j]!.type === b.type && b.type !== BlockType.DELTA && (b.type === BlockType.PATHS || blocks[j]!.lastTs === b.lastTs)) j++;
        const run = blocks.slice(i, j);
        if (run.length >= 3) {
          const kind = b.type === BlockType.IMAGE ? 'image' : 'paths';
          const picks: Array<[string, number]> = [['first', 0], ['middle', run.length >> 1], ['last', run.length - 1]];
          for (const [which, at] of picks) {
            const p = run[at]!;
            out.push({ file, offset: p.offset, frameBytes: p.frameBytes, name: `${file} ${kind} part ${which} (${at + 1}/${run.length}) at ${p.offset}` });
          }
        }
        i = j;
      }
    } finally {
      await fh.close();
    }
  }
  return out;
}

/** Header fields flipped (offset in the frame, mask): type IMAGE<->DELTA, lengths, times, counts, CRC, payload. */
const FIELDS: Array<[string, number, number]> = [
  ['type', 4, 0x01],
  ['stored length', 8, 0x01],
  ['raw length', 12, 0x04],
  ['first time', 16, 0x01],
  ['last time', 24, 0x01],
  ['last time high', 30, 0x10],
  ['batches', 32, 0x01],
  ['updates', 36, 0x01],
  ['CRC', 40, 0x80],
];

/** Every state an archive gives at every batch time: each raises TPD_CORRUPT_BLOCK, tells onCorrupt, or is right. */
async function checkStates(a: Archive, where: string): Promise<{ right: number; reported: number }> {
  // A file cut at a damaged block (reindex) serves no batch after it: a state there may be
  // that of the batches served, as well as that of all batches.
  const served: Batch[] = [];
  try {
    const c = a.cursor();
    for (let b = await c.next(); b; b = await c.next()) served.push(b);
  } catch (err) {
    if (!isTapedeckError(err)) throw err;
  }
  let right = 0;
  let reported = 0;
  // Every third batch time (about 50: each image's neighbourhood), and the end.
  const times = [...batches.filter((_, i) => i % 3 === 0).map((b) => b.ts), 'end' as const];
  for (const at of times) {
    for (const withHook of [false, true]) {
      const c = a.cursor();
      let corrupt = 0;
      try {
        await c.seek(at === 'end' ? 'end' : { ts: at });
        const byId = withHook ? await c.stateById(() => corrupt++) : await c.stateById();
        const state = new Map<string, Value>();
        for (const [id, v] of byId) state.set(a.paths[id]!, v);
        const next = await c.next();
        if (corrupt > 0) {
          reported++;
          continue;
        }
        const got = key(state);
        if (got !== truthBefore(next?.ts, served)) {
          expect(got, `${where}: state at ${String(at)} (next batch ${next?.ts}) is wrong and nothing was reported`).toBe(truthBefore(next?.ts));
        }
        right++;
      } catch (err) {
        if (!isTapedeckError(err)) throw err;
        expect(err.code, `${where}: at ${String(at)}: ${err.message}`).toMatch(/^TPD_CORRUPT_BLOCK$|^TPD_GAP|^TPD_/);
        reported++;
      }
    }
  }
  return { right, reported };
}

beforeAll(async () => {
  console.log(`parts damage seed ${SEED} (replay with PARTS_SEED=${SEED})`);
  base = await mkdtemp(join(tmpdir(), 'tapedeck-parts-base-'));
  work = await mkdtemp(join(tmpdir(), 'tapedeck-parts-'));
  const r = rng(SEED);
  const name = (i: number): string => `/dev-${i % 7}/${'metric-'.repeat(4)}${i}`;
  let ts = 1_000_000;
  // Every path gets a value early (a full image is then every path), then random updates.
  for (let b = 0; b < 160; b++) {
    ts += 1 + Math.floor(r() * 1000);
    const updates: Update[] = [];
    if (b < 8) for (let i = b * 20; i < (b + 1) * 20; i++) updates.push([name(i), `v${b}-${i}-${'x'.repeat(20 + (i % 30))}`]);
    else for (let k = 0; k < 12; k++) {
      const i = Math.floor(r() * PATHS);
      updates.push([name(i), r() < 0.5 ? Math.round(r() * 1e6) / 10 : `s${b}-${'y'.repeat(Math.floor(r() * 60))}`]);
    }
    batches.push({ ts, updates });
  }
  const a = await Archive.open(base, OPTIONS);
  for (const [i, b] of batches.entries()) {
    a.writer!.append(b.updates, b.ts);
    if (i % 10 === 9) await a.writer!.flush();
    // The new file opens with the whole dictionary and an image, both in parts.
    if (i === 99) await a.writer!.rotate();
  }
  await a.close();
  expect((await verifyArchive(base)).ok).toBe(true);
}, 60_000);

afterAll(async () => {
  for (const d of [base, work]) if (d) await rm(d, { recursive: true, force: true });
});

/**
 * The damaged copy `dir`, reindexed first when `mode` says so, opened read-only: its states
 * checked (a wrong one noted in `silentWrong`), then removed. Returns the blocks the open
 * recovered past a damaged commit slot.
 */
async function statesAfter(dir: string, mode: 'catalog' | 'reindex', where: string, silentWrong: string[]): Promise<number> {
  if (mode === 'reindex') await (await reindexArchive(dir)).close();
  const a = await Archive.open(dir, { readonly: true });
  const recovered = a.recovery.recoveredBlocks;
  try {
    await checkStates(a, `${where} (${mode})`);
  } catch (err) {
    silentWrong.push(`${where} (${mode}): ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await a.close();
    await rm(dir, { recursive: true, force: true });
  }
  return recovered;
}

describe('damage to images and path dictionaries cut into parts', () => {
  it('the undamaged archive has images and dictionaries of several parts and reads every state right', async () => {
    const ps = await parts();
    expect(ps.filter((p) => / image /.test(p.name)).length).toBeGreaterThanOrEqual(6);
    expect(ps.filter((p) => / paths /.test(p.name)).length).toBeGreaterThanOrEqual(6);
    expect(ps.filter((p) => p.file !== 'current').length).toBeGreaterThanOrEqual(6);
    const a = await Archive.open(base, { readonly: true });
    try {
      const { right } = await checkStates(a, 'undamaged');
      expect(right).toBe(2 * (Math.ceil(batches.length / 3) + 1));
    } finally {
      await a.close();
    }
  });

  it('each damaged field of each part is reported or leaves every state right, through the catalog and after a reindex', async () => {
    const ps = await parts();
    let n = 0;
    const silentWrong: string[] = [];
    for (const p of ps) {
      // Every field of a middle part; of the first and last, those that change how it is read.
      const some = / middle /.test(p.name) ? FIELDS : FIELDS.filter(([f]) => f === 'type' || f === 'last time' || f === 'CRC');
      const fields: Array<[string, number, number]> = [...some, ['payload', 48 + Math.floor((p.frameBytes - 48) / 2), 0x20]];
      for (const [field, at, mask] of fields) {
        const where = `${p.name}, ${field}`;
        for (const mode of ['catalog', 'reindex'] as const) {
          const dir = join(work, `c${n++}`);
          await cp(base, dir, { recursive: true });
          await xorByte(join(dir, p.file), p.offset + at, mask);
          const report = await verifyArchive(dir);
          expect(report.ok, `${where}: verify`).toBe(false);
          await statesAfter(dir, mode, where, silentWrong);
        }
      }
    }
    expect(silentWrong).toEqual([]);
  }, 300_000);
  it('an image torn after its first parts (a crash mid-write), with either commit slot damaged or none: every state reported or right', async () => {
    // A last commit that holds an image: the slot before it ends before the image.
    const torn = join(work, 'torn-base');
    await cp(base, torn, { recursive: true });
    const w = await Archive.open(torn, OPTIONS);
    const added: Batch[] = [];
    try {
      const images = w.writer!.stats.images;
      let ts = batches.at(-1)!.ts;
      for (let b = 0; w.writer!.stats.images === images; b++) {
        const updates: Update[] = [];
        for (let k = 0; k < 20; k++) updates.push([`/dev-${(b * 20 + k) % 7}/${'metric-'.repeat(4)}${(b * 20 + k) % PATHS}`, `late-${b}-${k}-${'q'.repeat(40)}`]);
        ts += 10;
        w.writer!.append(updates, ts);
        added.push({ ts, updates });
        // A commit a batch: the last one holds the batch whose block the image follows.
        await w.writer!.flush();
      }
    } finally {
      await w.close();
    }
    batches.push(...added);
    const fh = await open(join(torn, 'current'), 'r');
    const runs: Array<Array<{ offset: number; frameBytes: number }>> = [];
    try {
      const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
      let prev: (typeof blocks)[number] | undefined;
      for (const b of blocks) {
        if (b.type === BlockType.IMAGE) {
          if (prev?.type === BlockType.IMAGE && prev.lastTs === b.lastTs) runs.at(-1)!.push(b);
          else runs.push([b]);
        }
        prev = b;
      }
    } finally {
      await fh.close();
    }
    let recovered = 0;
    let n = 0;
    const silentWrong: string[] = [];
    for (const run of runs.slice(-1)) {
      expect(run.length).toBeGreaterThanOrEqual(3);
      // Cut inside the last part but one: the parts before it are whole.
      const part = run[run.length - 2]!;
      const at = part.offset + (part.frameBytes >> 1);
      for (const slot of ['none', 'A', 'B'] as const) {
        for (const mode of ['catalog', 'reindex'] as const) {
          const where = `image at ${run[0]!.offset} cut at ${at}, slot ${slot} damaged`;
          const dir = join(work, `t${n++}`);
          await cp(torn, dir, { recursive: true });
          await truncate(join(dir, 'current'), at);
          if (slot !== 'none') await xorByte(join(dir, 'current'), slot === 'A' ? 50 : 74, 0x01);
          recovered += await statesAfter(dir, mode, where, silentWrong);
        }
      }
    }
    expect(silentWrong).toEqual([]);
    // A damaged newest slot makes the open take back the whole parts past the other slot's length.
    expect(recovered).toBeGreaterThan(0);
  }, 120_000);
});
