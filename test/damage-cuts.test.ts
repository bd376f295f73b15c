/**
 * Segment files cut short below their committed length (a copy cut off, a disk that lost the
 * end of a file), at every kind of boundary: inside the header, at the header's end, at a
 * frame's start, inside a frame's header and inside its payload; and files replaced by
 * zeros. For each, in every rotated file and in `current`: verify reports it; read-only and
 * writable opens start; every batch served is the original one; every batch in the blocks
 * before the cut (and in the files before it) is still served; a writable open records on.
 *
 * DAMAGE_CUTS_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { cp, open, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Archive } from '../storage/archive.js';
import { verifyArchive } from '../storage/verify.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import { readFileHeader, scanBlocks } from '../storage/segment-file.js';
import { isTapedeckError } from '../protocol/errors.js';
import type { BlockRow } from '../storage/catalog.js';
import { rng, randomBatches } from './helpers/workload.js';
import { plain } from './helpers/replay.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import type { Batch } from '../protocol/value.js';

const SEED = scheduleSeed('DAMAGE_CUTS_SEED', 'damage-cuts');
const OPTIONS = { imageFrequencyBytes: 3000, flushIntervalMs: 0, rotateSizeBytes: 9000 };
const CUTS_PER_FILE = 4;

function text(v: unknown): string {
  return JSON.stringify(plain(v), (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? [...x] : x));
}

interface FileShape {
  name: string;
  committed: number;
  blocks: BlockRow[];
}

async function shapes(dir: string): Promise<FileShape[]> {
  const out: FileShape[] = [];
  for (const name of (await readdir(dir)).filter((n) => n === 'current' || /^\d{4}-/.test(n)).sort()) {
    const fh = await open(join(dir, name), 'r');
    try {
      const h = await readFileHeader(fh);
      out.push({ name, committed: h.commit.committedBytes, blocks: (await scanBlocks(fh, HEADER_BYTES, h.commit.committedBytes)).blocks });
    } finally {
      await fh.close();
    }
  }
  return out;
}

async function served(a: Archive, where: string): Promise<Batch[]> {
  const out: Batch[] = [];
  const c = a.cursor();
  try {
    for (let b = await c.next(); b; b = await c.next()) out.push(b);
  } catch (err) {
    if (!isTapedeckError(err)) throw new Error(`${where}: crash while reading: ${String(err)}`, { cause: err });
  }
  return out;
}

describe('segment files cut short', () => {
  it('at every kind of boundary, or zeroed: reported, opens start, what is served is original, nothing before the cut is lost', async () => {
    const r = rng(SEED);
    const root = await tmpDir('tapedeck-damage-cuts-');
    const base = join(root, 'base');
    const batches = randomBatches(SEED, 600, { paths: 25, maxUpdates: 6 });
    const a0 = await Archive.open(base, OPTIONS);
    let i = 0;
    for (const b of batches) {
      a0.writer!.append(b.updates, b.ts);
      if (++i % 35 === 0) await a0.writer!.flush();
    }
    await a0.close();
    const byTs = new Map(batches.map((b) => [b.ts, text(b.updates)]));
    const files = await shapes(base);
    expect(files.length).toBeGreaterThanOrEqual(3);

    let n = 0;
    for (const [fi, f] of files.entries()) {
      const pickBlock = (): BlockRow => f.blocks[Math.floor(r() * f.blocks.length)]!;
      const cuts: Array<[string, number | 'zeros']> = [
        ['inside the header', 1 + Math.floor(r() * (HEADER_BYTES - 1))],
        ['at the header\'s end', HEADER_BYTES],
        ['a file of zeros', 'zeros'],
      ];
      for (let k = 0; k < CUTS_PER_FILE; k++) {
        const b = pickBlock();
        cuts.push([`at block ${b.offset}'s start`, b.offset]);
        cuts.push([`inside block ${b.offset}'s frame header`, b.offset + 1 + Math.floor(r() * 47)]);
        cuts.push([`inside block ${b.offset}'s payload`, b.offset + 48 + Math.floor(r() * (b.frameBytes - 48))]);
      }
      for (const [what, at] of cuts) {
        if (at !== 'zeros' && at >= f.committed) continue;
        const where = `${f.name} cut ${what}${at === 'zeros' ? '' : ` (at ${at})`} (seed ${SEED})`;
        const dir = join(root, `t${n++}`);
        await cp(base, dir, { recursive: true });
        const path = join(dir, f.name);
        if (at === 'zeros') await writeFile(path, Buffer.alloc(f.committed));
        else await truncate(path, at);
        // Batches in files before this one, and in this file's delta blocks wholly before the cut.
        const intactEnd = at === 'zeros' || at < HEADER_BYTES ? 0 : at;
        const lastIntact = f.blocks.filter((b) => b.type === BlockType.DELTA && b.offset + b.frameBytes <= intactEnd).at(-1)?.lastTs
          ?? files.slice(0, fi).flatMap((x) => x.blocks).filter((b) => b.type === BlockType.DELTA).at(-1)?.lastTs
          ?? -Infinity;
        const mustServe = batches.filter((b) => b.ts <= lastIntact).map((b) => b.ts);

        expect((await verifyArchive(dir)).ok, `${where}: verify called it clean`).toBe(false);
        for (const readonly of [true, false, false]) {
          const label = `${where} ${readonly ? 'read-only' : 'writable'}`;
          const a = await Archive.open(dir, readonly ? { readonly: true } : OPTIONS).catch((err: unknown) => {
            throw new Error(`${label}: open failed: ${String(err)}`, { cause: err });
          });
          try {
            const got = await served(a, label);
            let last = -Infinity;
            for (const b of got) {
              expect(b.ts, `${label}: out of order`).toBeGreaterThan(last);
              last = b.ts;
              if (b.ts <= batches.at(-1)!.ts) expect(text(b.updates), `${label}: batch at ${b.ts} altered`).toBe(byTs.get(b.ts));
            }
            expect(got.slice(0, mustServe.length).map((b) => b.ts), `${label}: lost intact batches before the cut`).toEqual(mustServe);
            if (!readonly) {
              a.writer!.append([['/after/cut', n]]);
              await a.writer!.flush();
            }
          } finally {
            await a.close();
          }
        }
        await rm(dir, { recursive: true });
      }
    }
    expect(n).toBeGreaterThan(files.length * 5);
  });
});
