/**
 * A sidecar whose index declares more samples than its segment holds. An honest sidecar holds
 * each update of the segment's delta blocks at most once, so its sample counts add up to at
 * most the segment's updates (the archive's block table knows them). A sidecar written by
 * someone else (its CRC32Cs and identity made valid: anyone who can write the archive's
 * directory can) declared any count: a chunk of a few hundred bytes, LZ4 expanding 255 times
 * and a time column needing no byte a sample, made each read allocate two arrays of its count
 * (gigabytes: the server's memory) and answered samples the blocks do not hold. Such an index
 * is now refused as damaged before any chunk is read: the blocks answer.
 *
 * AUDIT10_COUNTS_SEED=<n> replays a run; the seed is printed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { Archive } from '../storage/index.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { identityOf, sidecarDir, sidecarPath } from '../storage/series-index/build.js';
import { encodeChunk } from '../storage/series-index/chunk.js';
import { encodeHeader, encodeIndex, HEADER_BYTES, type IndexEntry } from '../storage/series-index/format.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { crc32c } from '../storage/codec/crc.js';
import type { FileEntry } from '../storage/file-list.js';
import { readSeriesExact } from './helpers/series-exact.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';

const SEED = scheduleSeed('AUDIT10_COUNTS_SEED', 'audit10-sidecar-counts');
const T0 = 1_700_000_000_000_000;
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A sidecar for `f` as the builder would lay it out, with chunks of path `id` of the given sample counts (times spread over the file's range, values i). */
function crafted(a: Archive, f: FileEntry, id: number, counts: readonly number[]): Uint8Array {
  const ident = identityOf(a, f)!;
  const w = new ByteWriter(1 << 16);
  const entry: IndexEntry = { id, flags: 0, chunks: [] };
  counts.forEach((n, slice) => {
    const span = (ident.lastTs - ident.firstTs) / counts.length;
    const first = ident.firstTs + Math.ceil(slice * span);
    const last = slice === counts.length - 1 ? ident.lastTs : ident.firstTs + Math.floor((slice + 1) * span);
    const ts = Float64Array.from({ length: n }, (_, i) => (i === n - 1 ? last : first + Math.floor((i * (last - first)) / (n - 1))));
    const before = w.pos;
    encodeChunk(w, ts, Array.from({ length: n }, (_, i) => i), Uint32Array.from({ length: n }, (_, i) => i), 0, n, { id, slice });
    entry.chunks.push({ slice, offset: HEADER_BYTES + before, bytes: w.pos - before, n, first, last });
  });
  const chunks = w.finish();
  const index = encodeIndex([entry], ident.firstTs);
  const header = encodeHeader({ ...ident, indexOffset: HEADER_BYTES + chunks.length, indexBytes: index.stored.length, indexRawBytes: index.rawBytes, indexCrc: crc32c(index.stored) });
  const out = new Uint8Array(HEADER_BYTES + chunks.length + index.stored.length);
  out.set(header, 0);
  out.set(chunks, HEADER_BYTES);
  out.set(index.stored, HEADER_BYTES + chunks.length);
  return out;
}

describe('a sidecar declaring more samples than its segment holds', () => {
  it('is refused before a chunk is read: one chunk past the segment\'s updates, or chunks adding up past them', async () => {
    const rand = rng(SEED);
    const dir = await tmpDir('tapedeck-sidecar-counts-');
    let ts = T0;
    {
      const a = await Archive.open(dir, { flushIntervalMs: 0 });
      for (let k = 0; k < 300; k++) a.writer!.append([['/a', Math.round(rand() * 1e6) / 100]], (ts += 15_000_000));
      await a.writer!.rotate();
      a.writer!.append([['/a', 0]], (ts += 15_000_000));
      await a.close();
    }
    const ro = await Archive.open(dir, { readonly: true });
    const f = ro.files.find((e) => e.sealed)!;
    const want = await readSeriesExact(ro, T0, ts, false);
    const updates = 300;
    // An honest count reads back (the crafting is sound), what the blocks hold or not.
    const cases = [
      { what: 'one chunk of 40 times the segment\'s updates', counts: [40 * updates], refused: true },
      { what: 'two chunks of the segment\'s updates each', counts: [updates, updates], refused: true },
      { what: 'a chunk of the segment\'s updates', counts: [updates], refused: false },
    ];
    const path = sidecarPath(ro, f.name);
    await mkdir(sidecarDir(ro));
    await ro.close();
    for (const c of cases) {
      const ro2 = await Archive.open(dir, { readonly: true });
      cleanup.push(() => ro2.close());
      await writeFile(path, crafted(ro2, ro2.files.find((e) => e.sealed)!, 0, c.counts));
      const got = await readSeriesExact(ro2, T0, ts, true);
      const what = `${c.what} (seed ${SEED})`;
      if (c.refused) {
        expect(got, what).toEqual(want);
        expect(seriesIndexOf(ro2).stats.damaged, what).toBe(1);
      } else {
        expect(seriesIndexOf(ro2).stats.damaged, what).toBe(0);
        expect(got.get(0)?.length, what).toBe(want.get(0)?.length);
      }
      await ro2.close();
      cleanup.pop();
    }
  });
});
