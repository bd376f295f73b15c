/**
 * Indexing a file (no catalog: a reindex, a damaged catalog rebuilt, a file found at open)
 * read the payload of PATHS frames only and trusted the other frames' headers, which the
 * CRC32C covers but nothing checked there. A damaged block type (DELTA read as IMAGE, which
 * reading on passes over) or a batch count of zero (a block with nothing to read) was
 * indexed as such: that block's batches were left out of every read, with no problem at
 * open and no error at the read (found by test/audit11-storage-cold-copy.test.ts on a
 * fetched copy, AUDIT11_COLD_COPY_SEED=3; only verify saw it). Now every frame that reading
 * on never opens is opened when indexed. Each DELTA and IMAGE block of a rotated file and of
 * `current` in turn, type and count damaged, catalog gone, read-only and writable opens:
 * every batch served is the original, and a batch left out comes with a read's
 * TPD_CORRUPT_BLOCK or a problem naming the file.
 */
import { cp, open, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Archive } from '../storage/archive.js';
import { scanBlocks } from '../storage/segment-file.js';
import { BlockType } from '../storage/codec/frame.js';
import { HEADER_BYTES } from '../storage/codec/header.js';
import type { Batch } from '../protocol/value.js';
import { tmpDir } from './helpers/tmp.js';
import { xorByte, zeroBytes } from './helpers/damage.js';
import { plain, readAll } from './helpers/replay.js';

const T0 = 1_760_000_000_000_000;
const STORAGE = { flushIntervalMs: 0, imageFrequencyBytes: 2048 };
const all: Batch[] = Array.from({ length: 400 }, (_, i) => ({ ts: T0 + i * 1000, updates: [[`/d${i % 7}/a`, i], ['/b', `v${i}`]] }));
const text = (b: Batch): string => JSON.stringify(plain(b.updates));
const byTs = new Map(all.map((b) => [b.ts, text(b)]));

/** The ways a frame header is damaged here: its type (bits 0 and 1) and its batch count. */
const DAMAGES: Array<{ name: string; apply: (file: string, at: number) => Promise<void> }> = [
  { name: 'type xor 1', apply: (file, at) => xorByte(file, at + 4, 1) },
  { name: 'type xor 3', apply: (file, at) => xorByte(file, at + 4, 3) },
  { name: 'batch count zeroed', apply: async (file, at) => void (await zeroBytes(file, at + 32, 4)) },
];

async function frames(file: string): Promise<Array<{ offset: number; type: number }>> {
  const fh = await open(file, 'r');
  try {
    const { blocks } = await scanBlocks(fh, HEADER_BYTES, (await fh.stat()).size);
    return blocks.filter((b) => b.type !== BlockType.PATHS).map((b) => ({ offset: b.offset, type: b.type }));
  } finally {
    await fh.close();
  }
}

describe('frames a read never opens, damaged, indexed without a catalog', () => {
  it('leave no batch out in silence', async () => {
    const base = await tmpDir('tapedeck-a11-unread-');
    const pristine = join(base, 'pristine');
    const work = join(base, 'work');
    const a = await Archive.open(pristine, STORAGE);
    let k = 0;
    for (const b of all) {
      a.writer!.append(b.updates, b.ts);
      if (++k % 25 === 0) await a.writer!.flush();
      if (k === 200) await a.writer!.rotate();
    }
    await a.writer!.flush();
    await a.close();
    const names = (await readdir(pristine)).filter((n) => n === 'current' || /^\d{4}-/.test(n));
    expect(names).toHaveLength(2);
    let cases = 0;
    for (const name of names) {
      for (const f of await frames(join(pristine, name))) {
        for (const d of DAMAGES) {
          for (const readonly of [true, false]) {
            const where = `${name}, ${f.type === BlockType.IMAGE ? 'image' : 'delta'} block at ${f.offset}, ${d.name}, ${readonly ? 'read-only' : 'writable'}`;
            await rm(work, { recursive: true, force: true });
            await cp(pristine, work, { recursive: true });
            await d.apply(join(work, name), f.offset);
            for (const n of await readdir(work)) if (n.startsWith('catalog.sqlite')) await unlink(join(work, n));
            const b = await Archive.open(work, { ...STORAGE, readonly });
            try {
              let served: Batch[] = [];
              let failed: unknown;
              try {
                served = await readAll(b.cursor());
              } catch (err) {
                failed = err;
              }
              // An IMAGE read as a DELTA is opened by the read, which fails: loud, not silent.
              if (failed !== undefined) expect((failed as { code?: string }).code, `${where}: ${String(failed)}`).toBe('TPD_CORRUPT_BLOCK');
              for (const s of served) expect(text(s), `${where}: batch at ${s.ts} altered`).toBe(byTs.get(s.ts));
              if (failed === undefined && served.length < all.length) expect(b.problems.map((p) => p.file), `${where}: ${all.length - served.length} batches left out in silence`).toContain(name);
            } finally {
              await b.close();
            }
            cases++;
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(60);
  }, 60_000);
});
