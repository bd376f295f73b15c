/**
 * Damaged segment files read by every read path, not only the forward cursor the corruption
 * sweep reads by: the per-series read of PromQL from the blocks (readSeries, sidecars off),
 * a selective cursor (history of a few paths), a state after a seek to a time, steps back
 * (seek by -n batches). Regions as in the sweep (each header field and slot, the frame header,
 * CRC, reserved bytes and payload of PATHS, IMAGE and DELTA frames of rotated files and of
 * `current`), one damage a copy, seeded; each copy opened with its catalog and without it
 * (indexed from the files). Each time, whatever a read answers is what was recorded: every
 * sample and batch is an original one, every state the state the batches give; what a read
 * cannot answer is a TapedeckError with a TPD_ code, or left out with a problem the archive
 * reports (TPD_*); anything else (a crash, an altered value, a batch left out in silence)
 * fails.
 *
 * DAMAGE3_READS_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { cp, open, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { readSeries } from '../storage/series-read.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { scanBlocks } from '../storage/segment-file.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch, Value } from '../protocol/value.js';
import { xorByte, zeroBytes } from './helpers/damage.js';
import { naiveState, plain } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { randomBatches, rng } from './helpers/workload.js';
import { exactValue } from './helpers/values.js';

const OPTIONS = { imageFrequencyBytes: 3000, flushIntervalMs: 0, rotateSizeBytes: 5000 };
const DAMAGES_PER_REGION = 1;
const SEEKS = 6;

const text = (v: unknown): string => JSON.stringify(plain(v), (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));

interface Region { file: string; name: string; from: number; to: number }

/** A read's outcome: what it gave, and the error that ended it (undefined: it ended on its own). */
interface Outcome<T> { got: T; err?: unknown }

async function attempt<T>(got: T, fn: (got: T) => Promise<void>): Promise<Outcome<T>> {
  try {
    await fn(got);
    return { got };
  } catch (err) {
    return { got, err };
  }
}

describe('damaged segment files, every read path', () => {
  it('answer what was recorded, or a TPD_ error, or leave out with a reported problem', async () => {
    const seed = scheduleSeed('DAMAGE3_READS_SEED', 'damage3 read paths');
    const r = rng(seed);
    const base = await tmpDir();
    const work = await tmpDir();
    const batches: Batch[] = randomBatches(seed, 600, { paths: 24, maxUpdates: 6 });
    const a0 = await Archive.open(base, OPTIONS);
    let n0 = 0;
    for (const b of batches) {
      a0.writer!.append(b.updates, b.ts);
      if (++n0 % 30 === 0) await a0.writer!.flush();
    }
    await a0.close();
    const byTs = new Map(batches.map((b) => [b.ts, text(b.updates)]));
    /** `path ts value` of every update recorded (a batch may set a path twice: a series read gives both). */
    const samples = new Set<string>();
    let updates = 0;
    for (const b of batches) {
      for (const [p, v] of b.updates) samples.add(`${p} ${b.ts} ${text(exactValue(v))}`);
      updates += b.updates.length;
    }
    const allPaths = [...new Set(batches.flatMap((b) => b.updates.map(([p]) => p)))].sort();
    const few = allPaths.slice(0, 3);
    const t0 = batches[0]!.ts;
    const t1 = batches.at(-1)!.ts;

    const regions: Region[] = [];
    const names = (await readdir(base)).filter((x) => x === 'current' || /^\d{4}-/.test(x)).sort();
    expect(names.length).toBeGreaterThanOrEqual(4);
    for (const file of names) {
      for (const [name, from, to] of [['magic', 0, 8], ['version', 8, 10], ['ids', 16, 40], ['header CRC', 40, 44], ['slot A', 48, 72], ['slot B', 72, 96]] as const) regions.push({ file, name: `header ${name}`, from, to });
      const fh = await open(join(base, file), 'r');
      const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
      await fh.close();
      for (const type of [BlockType.PATHS, BlockType.IMAGE, BlockType.DELTA]) {
        const mine = blocks.filter((b) => b.type === type);
        for (let i = 0; i < 2 && mine.length > 0; i++) {
          const b = mine.splice(Math.floor(r() * mine.length), 1)[0]!;
          const kind = type === BlockType.PATHS ? 'PATHS' : type === BlockType.IMAGE ? 'IMAGE' : 'DELTA';
          regions.push({ file, name: `${kind} frame header`, from: b.offset, to: b.offset + 40 });
          regions.push({ file, name: `${kind} CRC`, from: b.offset + 40, to: b.offset + 44 });
          regions.push({ file, name: `${kind} payload`, from: b.offset + 48, to: b.offset + b.frameBytes });
        }
      }
    }

    const summary = { seed, copies: 0, errors: 0, leftOutWithProblem: 0 };
    let k = 0;
    for (const reg of regions) {
      for (let d = 0; d < DAMAGES_PER_REGION; d++) {
        const at = reg.from + Math.floor(r() * (reg.to - reg.from));
        const mask = 1 + Math.floor(r() * 255);
        const zero = r() < 0.3;
        const targets = Array.from({ length: SEEKS }, () => t0 - 10 + Math.floor(r() * (t1 - t0 + 20)));
        const backs = Array.from({ length: 3 }, () => -(1 + Math.floor(r() * 80)));
        for (const noCatalog of [false, true]) {
          const where = `${reg.file} ${reg.name} @${at} ${zero ? 'zero 2' : `xor 0x${mask.toString(16)}`}${noCatalog ? ', catalog gone' : ''} (seed ${seed})`;
          const dir = join(work, `c${k++}`);
          await cp(base, dir, { recursive: true });
          if (!zero || !(await zeroBytes(join(dir, reg.file), at, 2))) await xorByte(join(dir, reg.file), at, mask);
          if (noCatalog) for (const x of ['catalog.sqlite', 'catalog.sqlite-wal', 'catalog.sqlite-shm']) await unlink(join(dir, x)).catch(() => undefined);
          summary.copies++;
          const a = await Archive.open(dir, { readonly: true });
          try {
            const problems = (): number => a.problems.length;
            const check = (o: Outcome<unknown>, complete: boolean, what: string): void => {
              if (o.err !== undefined) {
                expect(isTapedeckError(o.err) && /^TPD_/.test(o.err.code), `${where} ${what}: not a TPD_ error: ${String(o.err)}`).toBe(true);
                summary.errors++;
              } else if (!complete) {
                expect(problems(), `${where} ${what}: data left out with no error and no problem`).toBeGreaterThan(0);
                summary.leftOutWithProblem++;
              }
            };

            // PromQL's per-series read from the blocks.
            const ids = a.paths.map((_, id) => id);
            const series = await attempt<string[]>([], async (got) => {
              for await (const pieces of readSeries(a, ids, t0 - 1, t1, { sidecars: false })) {
                for (const { id, run, from, to } of pieces) {
                  for (let i = from; i < to; i++) got.push(`${a.paths[id]} ${run.ts[i]} ${text(exactValue(run.num ? (run.num[i] as number) : (run.values?.[i] as Value)))}`);
                }
              }
            });
            for (const s of series.got) expect(samples.has(s), `${where} series read: sample altered: ${s.slice(0, 120)}`).toBe(true);
            check(series, series.got.length === updates, 'series read');

            // A selective cursor over a few paths (history of explicit paths).
            const sel = await attempt<Batch[]>([], async (got) => {
              const c = a.cursor({ filter: few, selective: true });
              for (let b = await c.next(); b; b = await c.next()) got.push(b);
            });
            const wantSel = batches.filter((b) => b.updates.some(([p]) => few.includes(p)));
            for (const b of sel.got) {
              const orig = batches.find((x) => x.ts === b.ts);
              expect(orig, `${where} selective: a batch at ${b.ts} never recorded`).toBeDefined();
              expect(text(b.updates), `${where} selective: batch at ${b.ts} altered`).toBe(text(orig!.updates.filter(([p]) => few.includes(p))));
            }
            check(sel, sel.got.length === wantSel.length, 'selective cursor');

            // States after seeks to times.
            for (const t of targets) {
              const st = await attempt<Array<[string, Value]>>([], async (got) => {
                const c = a.cursor();
                await c.seek({ ts: t });
                got.push(...[...(await c.state())].sort(([x], [y]) => (x < y ? -1 : 1)));
              });
              if (st.err === undefined) {
                const want = [...naiveState(batches, t)].sort(([x], [y]) => (x < y ? -1 : 1));
                expect(text(st.got), `${where} state at ${t}: not the state the batches give (problems: ${a.problems.map((p) => p.code).join() || 'none'})`).toBe(text(want));
              } else check(st, true, `state at ${t}`);
            }

            // Steps back from the end.
            for (const n of backs) {
              const back = await attempt<Batch[]>([], async (got) => {
                const c = a.cursor();
                await c.seek('end');
                await c.seek({ batches: n });
                const b = await c.next();
                if (b) got.push(b);
              });
              for (const b of back.got) expect(text(b.updates), `${where} ${n} back: batch at ${b.ts} altered or never recorded`).toBe(byTs.get(b.ts));
              const want = batches.at(n);
              check(back, back.got[0]?.ts === want?.ts, `${n} back`);
            }
          } finally {
            await a.close();
          }
          await rm(dir, { recursive: true, force: true });
        }
      }
    }
    console.log(JSON.stringify(summary));
    expect(summary.copies).toBeGreaterThan(100);
  });
});
