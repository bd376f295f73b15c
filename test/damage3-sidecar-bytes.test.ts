/**
 * Damaged bytes anywhere in a per-series sidecar (series-index/<file>.sidx), at seeded random
 * offsets over the whole file: a byte flipped, a run zeroed, the file cut or grown. `tapedeck
 * verify` reported none of it (it checked segment files, the catalog and the coverage
 * journal only: a damaged sidecar was found by the first query that read it, or never); and a
 * sidecar whose magic or version was damaged was removed at start in silence, as if it were
 * another release's. Now, for each damage: verify reports it (TPD_CORRUPT_BLOCK, naming the
 * sidecar) and nothing else; reads through the sidecars give exactly what the blocks give
 * (the reader finds the damage too); a writable start says so and builds it again, byte for
 * byte the sidecar it was. An undamaged archive with sidecars verifies clean, and an earlier
 * release's sidecar is not damage.
 *
 * DAMAGE3_SIDECAR_SEED=<n> replays a run; the seed is printed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFile, readdir, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive, type Logger } from '../storage/archive.js';
import { readSeries } from '../storage/series-read.js';
import { STORAGE_LIMITS } from '../storage/limits.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { SIDECAR_DIR, sidecarPath } from '../storage/series-index/build.js';
import { verifyArchive } from '../storage/verify.js';
import { crc32c } from '../storage/codec/crc.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { Value } from '../protocol/value.js';
import { xorByte, zeroBytes } from './helpers/damage.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { exactValue } from './helpers/values.js';

const DAMAGES = 400;
const limits = STORAGE_LIMITS as { -readonly [K in keyof typeof STORAGE_LIMITS]: number };
const saved = { ...STORAGE_LIMITS };
afterEach(() => {
  Object.assign(limits, saved);
});

/** Three rotated files and `current`; 12 numeric paths, one of text (not covered). */
async function record(dir: string, seed: number): Promise<{ firstUs: number; lastUs: number }> {
  const rand = rng(seed);
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  let ts = 1_700_000_000_000_000;
  const firstUs = ts + 1;
  for (let file = 0; file < 4; file++) {
    for (let b = 0; b < 12; b++) {
      for (let j = 0; j < 3; j++) {
        ts += 1000 + Math.floor(rand() * 9000);
        const updates: Array<[string, Value]> = [];
        for (let i = 0; i < 12; i++) if (rand() < 0.8) updates.push([`/s/${i}`, i % 4 === 0 ? Math.floor(rand() * 100) : rand() * 1e6]);
        updates.push(['/text', `t${Math.floor(rand() * 5)}`]);
        a.writer!.append(updates, ts);
      }
      await a.writer!.flush();
    }
    if (file < 3) await a.writer!.rotate();
  }
  const store = await startSeriesIndex(a);
  await store.whenIdle();
  await a.close();
  return { firstUs, lastUs: ts };
}

async function readAll(a: Archive, fromUs: number, toUs: number, sidecars: boolean): Promise<string> {
  const ids = a.paths.map((_, id) => id);
  const out: string[] = [];
  for await (const pieces of readSeries(a, ids, fromUs, toUs, { sidecars })) {
    for (const { id, run, from, to } of pieces) {
      for (let i = from; i < to; i++) out.push(`${id} ${run.ts[i]} ${JSON.stringify(exactValue(run.num ? (run.num[i] as number) : (run.values?.[i] as Value)))}`);
    }
  }
  return out.sort().join('\n');
}

function capture(): { logger: Logger; warns: Array<{ obj: object; msg: string }> } {
  const warns: Array<{ obj: object; msg: string }> = [];
  return { warns, logger: { warn: (obj, msg) => warns.push({ obj, msg }), info() {}, error() {} } };
}

describe('damaged bytes anywhere in a series sidecar', () => {
  it('are reported by verify with their code, never read as data, and built again at a writable start', async () => {
    const seed = scheduleSeed('DAMAGE3_SIDECAR_SEED', 'damage3 sidecar bytes');
    const rand = rng(seed);
    limits.seriesIndexSliceUpdatesMax = 61; // several slices a file: many chunks
    const dir = await tmpDir();
    const { firstUs, lastUs } = await record(dir, seed);
    const clean = await verifyArchive(dir);
    expect(clean.problems, 'an archive with sidecars, undamaged').toEqual([]);
    const sidecars = (await readdir(join(dir, SIDECAR_DIR))).filter((n) => n.endsWith('.sidx')).sort();
    expect(sidecars.length).toBe(3);
    const pristine = new Map<string, Buffer>();
    for (const n of sidecars) pristine.set(n, await readFile(join(dir, SIDECAR_DIR, n)));

    const ro0 = await Archive.open(dir, { readonly: true });
    const want = await readAll(ro0, firstUs - 1, lastUs, false);
    expect(await readAll(ro0, firstUs - 1, lastUs, true)).toBe(want);
    expect(seriesIndexOf(ro0).stats.reads).toBeGreaterThan(0);
    await ro0.close();

    const summary = { seed, damages: 0, verified: 0, readerFound: 0 };
    for (let k = 0; k < DAMAGES; k++) {
      const n = sidecars[Math.floor(rand() * sidecars.length)]!;
      const file = join(dir, SIDECAR_DIR, n);
      const bytes = pristine.get(n)!;
      for (const x of sidecars) await writeFile(join(dir, SIDECAR_DIR, x), pristine.get(x)!);
      const r = rand();
      const at = Math.floor(rand() * bytes.length);
      let what: string;
      if (r < 0.55) {
        const mask = 1 + Math.floor(rand() * 255);
        what = `xor 0x${mask.toString(16)} at ${at}`;
        await xorByte(file, at, mask);
      } else if (r < 0.8) {
        const len = 1 + Math.floor(rand() * 16);
        what = `zero ${len} at ${at}`;
        if (!(await zeroBytes(file, at, len))) {
          what = `xor 0x80 at ${at} (zeros already)`;
          await xorByte(file, at, 0x80);
        }
      } else if (r < 0.95) {
        what = `cut at ${at}`;
        await truncate(file, at);
      } else {
        what = 'a byte appended';
        await writeFile(file, Buffer.concat([bytes, Buffer.from([Math.floor(rand() * 256)])]));
      }
      const where = `${n} ${what} (seed ${seed})`;
      summary.damages++;

      const report = await verifyArchive(dir);
      expect(report.ok, `${where}: verify called it clean`).toBe(false);
      expect(report.problems.length, where).toBeGreaterThan(0);
      for (const p of report.problems) {
        expect(p.file, `${where}: ${p.message}`).toBe(`${SIDECAR_DIR}/${n}`);
        expect(p.code, where).toBe('TPD_CORRUPT_BLOCK');
      }
      summary.verified++;

      const seen = capture();
      const ro = await Archive.open(dir, { readonly: true, logger: seen.logger });
      try {
        expect(await readAll(ro, firstUs - 1, lastUs, true), `${where}: read through the sidecars`).toBe(want);
        if (seriesIndexOf(ro).stats.damaged > 0) {
          summary.readerFound++;
          expect(seen.warns.map((x) => (x.obj as { code?: string }).code), `${where}: the reader's warning names its code`).toContain('TPD_CORRUPT_BLOCK');
        }
      } finally {
        await ro.close();
      }
    }
    console.log(JSON.stringify(summary));
    // Every read of every series over the whole range reads every chunk and the index: the reader finds them all too.
    expect(summary.readerFound).toBe(summary.damages);

    // A writable start: a sidecar whose magic or version is damaged is said so (not taken for another release's), and built again.
    const n = sidecars[0]!;
    await xorByte(join(dir, SIDECAR_DIR, n), 9, 0x10);
    const { logger, warns } = capture();
    const w = await Archive.open(dir, { flushIntervalMs: 0, logger });
    try {
      const store = await startSeriesIndex(w);
      await store.whenIdle();
      expect(warns.some((x) => (x.obj as { code?: string }).code === 'TPD_CORRUPT_BLOCK' && (x.obj as { file?: string }).file === n), JSON.stringify(warns)).toBe(true);
      // The loop's last damage is still on disk (unless it hit the same file): found by this read, built again.
      expect(await readAll(w, firstUs - 1, lastUs, true)).toBe(want);
      await store.whenIdle();
    } finally {
      await w.close();
    }
    for (const x of sidecars) expect(Buffer.compare(await readFile(join(dir, SIDECAR_DIR, x)), pristine.get(x)!), `${x} built again as it was`).toBe(0);
    expect((await verifyArchive(dir)).problems).toEqual([]);
  });

  it("an earlier release's sidecar is stale, not damage: verify passes it, a start builds it again without a warning", async () => {
    const seed = scheduleSeed('DAMAGE3_SIDECAR_SEED', 'damage3 sidecar earlier version');
    const dir = await tmpDir();
    const { firstUs, lastUs } = await record(dir, seed);
    const n = (await readdir(join(dir, SIDECAR_DIR))).filter((x) => x.endsWith('.sidx')).sort()[0]!;
    const file = join(dir, SIDECAR_DIR, n);
    const pristine = await readFile(file);
    const old = Buffer.from(pristine);
    old.writeUInt32LE(3, 8); // version 3's header: its CRC32C is not where version 4's is
    old.writeUInt32LE((crc32c(old.subarray(0, 84)) ^ 1) >>> 0, 84);
    await writeFile(file, old);
    expect((await verifyArchive(dir)).problems).toEqual([]);
    const ro = await Archive.open(dir, { readonly: true });
    const want = await readAll(ro, firstUs - 1, lastUs, false);
    expect(await readAll(ro, firstUs - 1, lastUs, true)).toBe(want);
    await ro.close();
    const { logger, warns } = capture();
    const w = await Archive.open(dir, { flushIntervalMs: 0, logger });
    try {
      await (await startSeriesIndex(w)).whenIdle();
    } finally {
      await w.close();
    }
    expect(warns.filter((x) => /sidecar/.test(x.msg))).toEqual([]);
    expect(Buffer.compare(await readFile(sidecarPath({ dir } as Archive, n.slice(0, -5))), pristine)).toBe(0);
  });
});
