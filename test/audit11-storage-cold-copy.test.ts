/**
 * A damaged copy in cold storage, fetched back by the get hook: a byte flipped or zeroed in
 * every region of the file (header fields, both commit slots, each block's frame header,
 * CRC, reserved bytes and payload) or the copy cut short, at seeded offsets, for a file the
 * catalog indexed before it was evicted and for one known from the list hook only (the
 * catalog rebuilt since). Every batch served is the original; a batch not served is either
 * a read's TPD_* error or a problem the archive reports naming the file, never left out in
 * silence. Found: a fetched file never indexed was scanned up to its first damaged block and
 * the rest left out with a log line only (not a problem of the archive), and one whose
 * commit slot was damaged lost the blocks past the surviving slot's length in silence
 * (an open recovers them from a local file).
 * AUDIT11_COLD_COPY_SEED=<n> replays the offsets.
 */
import { cp, mkdir, open, readdir, rm, stat, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { ColdStorage } from '../storage/cold.js';
import { scanBlocks } from '../storage/segment-file.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { Batch } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';
import { scheduleSeed } from './helpers/seed.js';
import { rng } from './helpers/workload.js';
import { xorByte, zeroBytes } from './helpers/damage.js';
import { plain } from './helpers/replay.js';
import { HOOKS as FIX, recordEvicted } from './helpers/cold-shipped.js';

const T0 = 1_760_000_000_000_000;
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 2048 };
const PER_FILE = 200;
const FLUSH_EVERY = 25;
const DAMAGES_PER_REGION = 1;

const all: Batch[] = Array.from({ length: 3 * PER_FILE }, (_, i) => ({ ts: T0 + i * 1000, updates: [[`/d${i % 7}/a`, i], ['/b', `v${i}`]] }));
const text = (b: Batch): string => JSON.stringify(plain(b.updates));
const byTs = new Map(all.map((b) => [b.ts, text(b)]));

interface Region {
  name: string;
  from: number;
  to: number;
}

/** The header's fields, and the frame regions of the first block (the dictionary), the last and one chosen at random. */
async function regionsOf(file: string, r: () => number): Promise<Region[]> {
  const out: Region[] = [
    { name: 'magic', from: 0, to: 8 }, { name: 'version', from: 8, to: 10 }, { name: 'flags and header length', from: 10, to: 16 },
    { name: 'archive id, seq, created', from: 16, to: 40 }, { name: 'header CRC', from: 40, to: 44 }, { name: 'reserved', from: 44, to: 48 },
    { name: 'slot A', from: 48, to: 72 }, { name: 'slot B', from: 72, to: 96 },
  ];
  const fh = await open(file, 'r');
  try {
    const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
    expect(blocks.length).toBeGreaterThan(4);
    const middle = 1 + Math.floor(r() * (blocks.length - 2));
    for (const b of [blocks[0]!, blocks[middle]!, blocks[blocks.length - 1]!]) {
      out.push({ name: `block ${b.offset} (type ${b.type}) frame header`, from: b.offset, to: b.offset + 40 });
      out.push({ name: `block ${b.offset} CRC and reserved`, from: b.offset + 40, to: b.offset + 48 });
      out.push({ name: `block ${b.offset} payload`, from: b.offset + 48, to: b.offset + b.frameBytes });
    }
  } finally {
    await fh.close();
  }
  return out;
}

/** Opens (with list when the catalog is gone), reads on from the start, and checks what was served. */
async function readBack(dir: string, cold: string, damaged: string, listed: boolean, where: string): Promise<void> {
  const a = await Archive.open(dir, STORAGE);
  const hooks = { get: { cmd: join(FIX, 'get-copy.sh'), args: [cold] }, ...(listed ? { list: { cmd: join(FIX, 'list-dir.sh'), args: [cold] } } : {}) };
  const c = await ColdStorage.start(a, { hooks, checkIntervalMs: 0, listIntervalMs: 0 });
  try {
    const served: Batch[] = [];
    let failed: unknown;
    const cur = a.cursor();
    try {
      for (let b = await cur.next(); b; b = await cur.next()) served.push(b);
    } catch (err) {
      failed = err;
    }
    if (failed !== undefined && !isTapedeckError(failed)) throw new Error(`${where}: ${String(failed)}`, { cause: failed });
    let last = -Infinity;
    for (const b of served) {
      expect(b.ts, `${where}: out of order`).toBeGreaterThan(last);
      last = b.ts;
      expect(text(b), `${where}: batch at ${b.ts} altered`).toBe(byTs.get(b.ts));
    }
    if (failed === undefined && served.length < all.length) {
      expect(a.problems.map((p) => p.file), `${where}: ${all.length - served.length} batches left out in silence`).toContain(damaged);
    }
  } finally {
    await c.stop();
    await a.close();
  }
}

describe('a damaged copy fetched back from cold storage', () => {
  it('is served as it was written up to the damage, and what it cannot serve is an error or a reported problem', async () => {
    const seed = scheduleSeed('AUDIT11_COLD_COPY_SEED', 'audit11-storage-cold-copy');
    const r = rng(seed);
    const base = await tmpDir('tapedeck-a11-cold-copy-');
    const pristine = join(base, 'pristine');
    const work = join(base, 'work');
    await mkdir(join(pristine, 'cold'), { recursive: true });
    await recordEvicted(join(pristine, 'archive'), join(pristine, 'cold'), all, { perFile: PER_FILE, rotations: 2, flushEvery: FLUSH_EVERY, storage: STORAGE });
    const names = (await readdir(join(pristine, 'cold'))).sort();
    const victim = names[1] as string;
    const size = (await stat(join(pristine, 'cold', victim))).size;
    const regions = await regionsOf(join(pristine, 'cold', victim), r);
    let cases = 0;
    for (const listed of [false, true]) {
      for (const reg of regions) {
        for (let i = 0; i <= DAMAGES_PER_REGION; i++) {
          await rm(work, { recursive: true, force: true });
          await cp(pristine, work, { recursive: true });
          const dir = join(work, 'archive');
          const cold = join(work, 'cold');
          const file = join(cold, victim);
          let how: string;
          if (i === DAMAGES_PER_REGION) {
            // A copy cut short inside the region; a frame header's at its first byte (the copy
            // then ends between two frames: only the file header's committed length tells).
            const at = reg.name.endsWith('frame header') ? reg.from : reg.from + Math.floor(r() * (reg.to - reg.from));
            await truncate(file, at);
            how = `cut at ${at} of ${size}`;
          } else {
            const at = reg.from + Math.floor(r() * (reg.to - reg.from));
            const mask = 1 + Math.floor(r() * 255);
            if (r() < 0.5 && (await zeroBytes(file, at, Math.min(4, reg.to - at)))) how = `zeroed at ${at}`;
            else {
              await xorByte(file, at, mask);
              how = `xor ${mask} at ${at}`;
            }
          }
          if (listed) for (const n of await readdir(dir)) if (n.startsWith('catalog.sqlite')) await unlink(join(dir, n));
          await readBack(dir, cold, victim, listed, `seed ${seed}, ${listed ? 'known from list' : 'indexed'}, ${reg.name}: ${how}`);
          cases++;
        }
      }
    }
    expect(cases).toBe(2 * regions.length * (DAMAGES_PER_REGION + 1));
  }, 60_000);
});
