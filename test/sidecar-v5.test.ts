/**
 * Version-5 per-series sidecars (storage/series-index/chunk-refs.ts): built for a compacted
 * file (every delta block codec 3), they hold each path's times and references to its
 * column bodies in the segment, not a copy of its values. The same batches recorded twice:
 * one archive compacted (`compactArchive`), the other not; every path's series read through
 * the version-5 sidecars must be what the version-4 sidecars of the uncompacted copy give,
 * and what the blocks give (numbers, noisy doubles, NaN payloads with the stale marker, -0,
 * counters, a path listed twice in a batch, nulls; paths with text are not covered, in
 * both versions alike). Damage in every region of a version-5 sidecar, and in a body of the
 * segment it points at, is never read as values: the read falls back to the blocks (which
 * answer, or refuse a damaged segment), and `verify` reports it.
 *
 * SIDECAR_V5_SEED=<n> replays a run; the seed is printed.
 */
import { describe, expect, it } from 'vitest';
import { cp, open, readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { join } from 'node:path';
import { Archive } from '../storage/index.js';
import { compactArchive } from '../storage/compact-archive.js';
import { verifyArchive } from '../storage/verify.js';
import { seriesIndexOf } from '../storage/series-index/store.js';
import { sidecarPath } from '../storage/series-index/build.js';
import { decodeRefChunk, encodeRefChunk, type RefChunk } from '../storage/series-index/chunk-refs.js';
import { chunkRefs } from '../storage/series-index/index-refs.js';
import { readSpans, spanReaderStats, SpanReadError, stopSpanReader } from '../storage/series-index/span-reader.js';
import { ByteWriter } from '../storage/codec/bytes.js';
import { ColumnKind } from '../storage/codec/columns.js';
import { crc32c } from '../storage/codec/crc.js';
import { decodeHeader, decodeIndex, encodeHeader, encodeIndex, FLAG_NOT_COVERED, HEADER_BYTES, SIDECAR_REFS_VERSION, type IndexEntry, SIDECAR_VERSION, versionOf, type SidecarIndex } from '../storage/series-index/format.js';
import type { FileEntry } from '../storage/file-list.js';
import { startSeriesIndex } from '../server/series-index.js';
import type { Value } from '../protocol/value.js';
import { isTapedeckError } from '../protocol/errors.js';
import { FRAGILE_NANS, STALE_NAN } from './helpers/nan.js';
import { xorByte } from './helpers/damage.js';
import { readSeriesExact } from './helpers/series-exact.js';
import { scheduleSeed } from './helpers/seed.js';
import { tmpDir } from './helpers/tmp.js';
import { rng } from './helpers/workload.js';
import { storageLimitsForTests } from './helpers/storage-limits.js';
import { runScript } from './helpers/child-server.js';

const SEED = scheduleSeed('SIDECAR_V5_SEED', 'sidecar-v5');
const PATHS = 24;
const T0 = 1_700_000_000_000_000;
const { limits, cleanup } = storageLimitsForTests();

/** Path i's k-th value: counters, noisy doubles, NaN payloads and -0, decimals with nulls, text now and then (not covered). */
function valueOf(rand: () => number, i: number, k: number): Value {
  const r = rand();
  switch (i % 6) {
    case 0:
      return k * 3 + i;
    case 1:
      return rand() * 1e9;
    case 2:
      return r < 0.1 ? STALE_NAN : r < 0.15 ? (FRAGILE_NANS[k % FRAGILE_NANS.length] as number) : r < 0.2 ? -0 : r < 0.22 ? -Infinity : Math.round(rand() * 1e5) / 100;
    case 3:
      // Nulls and NaN payloads in one path: bodies of numbers (XOR) and MSGPACK in one chunk, read as values.
      return r < 0.1 ? null : r < 0.15 ? (FRAGILE_NANS[k % FRAGILE_NANS.length] as number) : Math.round(rand() * 1e4) / 10;
    case 4:
      return i === 4 && r < 0.05 ? `text ${k}` : Math.round(rand() * 1e6);
    default:
      return r < 0.02 ? null : k % 17;
  }
}

/** Three sealed files of small blocks, and the open one; some scrapes regular, some not; /dup listed twice in some batches. */
async function record(dir: string): Promise<{ firstUs: number; lastUs: number }> {
  const rand = rng(SEED);
  const a = await Archive.open(dir, { flushIntervalMs: 0 });
  let ts = T0;
  let k = 0;
  for (let file = 0; file < 4; file++) {
    for (let b = 0; b < 120; b++) {
      ts += file === 1 ? 15_000_000 : 1 + Math.floor(rand() * 20_000_000);
      const updates: Array<[string, Value]> = [];
      for (let i = 0; i < PATHS; i++) if (file === 1 || rand() < 0.8) updates.push([`/s/${i}`, valueOf(rand, i, k)]);
      if (b % 3 === 0) updates.push(['/dup', k], ['/dup', rand() < 0.2 ? STALE_NAN : k + 0.5]);
      a.writer!.append(updates, ts);
      k++;
      if (b % 4 === 3) await a.writer!.flush();
    }
    await a.writer!.flush();
    if (file < 3) await a.writer!.rotate();
  }
  await a.close();
  return { firstUs: T0, lastUs: ts };
}

const sealed = (a: Archive): FileEntry[] => a.files.filter((f) => f.sealed);

function indexOf(a: Archive, f: FileEntry, bytes: Uint8Array): { version: number; ix: SidecarIndex; indexOffset: number } {
  const h = decodeHeader(bytes, { archiveId: a.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: a.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs! }, bytes.length);
  return { version: h.version as number, ix: decodeIndex(bytes.subarray(h.indexOffset), h), indexOffset: h.indexOffset };
}

/** Every chunk of a version-5 sidecar, opened: its index entry, place and references. */
function refChunks(bytes: Uint8Array, ix: SidecarIndex): Array<{ at: number; place: { id: number; slice: number }; chunk: RefChunk }> {
  const out: Array<{ at: number; place: { id: number; slice: number }; chunk: RefChunk }> = [];
  for (let p = 0; p < ix.ids.length; p++) {
    for (let at = ix.chunkStart[p] as number; at < (ix.chunkStart[p + 1] as number); at++) {
      const place = { id: ix.ids[p] as number, slice: ix.slice[at] as number };
      const off = ix.offset[at] as number;
      const chunk = decodeRefChunk(bytes.subarray(off, off + (ix.bytes[at] as number)), ix.n[at] as number, ix.first[at] as number, ix.last[at] as number, place, chunkRefs(ix.refs!, at));
      // Regular times come back as a shared array: a copy of its own.
      out.push({ at, place, chunk: { ...chunk, ts: chunk.ts.slice() } });
    }
  }
  return out;
}

/** Path ids each sealed file's sidecar covers. */
async function covered(a: Archive): Promise<string[]> {
  const out: string[] = [];
  for (const f of sealed(a)) {
    const { ix } = indexOf(a, f, await readFile(sidecarPath(a, f.name)));
    ix.ids.forEach((id, p) => out.push(`${f.name}:${a.paths[id]}:${((ix.flags[p] as number) & FLAG_NOT_COVERED) === 0}`));
  }
  return out;
}

/** Two archives of the same batches: `v5` compacted (blocks of 300 updates), `v4` not; both with their sidecars built. */
async function pair(): Promise<{ v5: Archive; v4: Archive; dir5: string; firstUs: number; lastUs: number }> {
  const dir5 = await tmpDir();
  const dir4 = await tmpDir();
  const { firstUs, lastUs } = await record(dir5);
  await cp(dir5, dir4, { recursive: true });
  // Noisy doubles barely shrink: compacted whatever it saves.
  limits.compactKeptBytesRatioMax = 2;
  const report = await compactArchive(dir5, { targets: { updates: 300 } });
  expect(report.filter((r) => r.skipped === undefined).length, `three sealed files compacted: ${JSON.stringify(report)}`).toBe(3);
  // Slices of about 3 compacted blocks: chunks hold several references.
  limits.seriesIndexSliceUpdatesMax = 1000;
  const v5 = await Archive.open(dir5, { flushIntervalMs: 0 });
  cleanup.push(() => v5.close());
  const v4 = await Archive.open(dir4, { flushIntervalMs: 0 });
  cleanup.push(() => v4.close());
  for (const a of [v5, v4]) await (await startSeriesIndex(a)).whenIdle();
  return { v5, v4, dir5, firstUs, lastUs };
}

describe('version-5 sidecars of compacted files', () => {
  it('give every path what version 4 gives on the uncompacted copy, and what the blocks give', async () => {
    const { v5, v4, firstUs, lastUs } = await pair();
    for (const f of sealed(v5)) expect(versionOf(await readFile(sidecarPath(v5, f.name))), f.name).toBe(SIDECAR_REFS_VERSION);
    for (const f of sealed(v4)) expect(versionOf(await readFile(sidecarPath(v4, f.name))), f.name).toBe(SIDECAR_VERSION);
    // The same paths covered (text: not), the twice-listed and nulled ones among the covered.
    const cover = await covered(v5);
    expect(cover).toEqual(await covered(v4));
    expect(cover.filter((c) => c.endsWith(':false')).length).toBeGreaterThan(0);
    expect(cover).toContain(`${sealed(v5)[0]!.name}:/dup:true`);
    const blocks = await readSeriesExact(v5, firstUs - 1, lastUs, false);
    const blocksBefore = seriesIndexOf(v5).stats.reads;
    expect(await readSeriesExact(v5, firstUs - 1, lastUs, true), `seed ${SEED}`).toEqual(blocks);
    expect(seriesIndexOf(v5).stats.reads).toBeGreaterThan(blocksBefore);
    expect(await readSeriesExact(v4, firstUs - 1, lastUs, true), `seed ${SEED}`).toEqual(blocks);
    const rand = rng(SEED + 1);
    for (let round = 0; round < 20; round++) {
      const ids = v5.paths.map((_, id) => id).filter(() => rand() < 0.3);
      const fromUs = firstUs + Math.floor(rand() * (lastUs - firstUs));
      const toUs = fromUs + Math.floor(rand() * (lastUs - fromUs));
      expect(await readSeriesExact(v5, fromUs, toUs, true, ids), `round ${round} (seed ${SEED})`).toEqual(await readSeriesExact(v4, fromUs, toUs, true, ids));
    }
    expect(seriesIndexOf(v5).stats.damaged).toBe(0);
    expect(seriesIndexOf(v5).stats.fallbacks).toBe(0);
    // Chunks of several blocks' bodies.
    let most = 0;
    let mixed = 0;
    for (const f of sealed(v5)) {
      const bytes = await readFile(sidecarPath(v5, f.name));
      const { ix } = indexOf(v5, f, bytes);
      for (const { chunk } of refChunks(bytes, ix)) {
        most = Math.max(most, chunk.refs.length);
        if (chunk.refs.some((r) => r.kind === ColumnKind.MSGPACK) && chunk.refs.some((r) => r.kind === ColumnKind.XOR)) mixed++;
      }
    }
    expect(most).toBeGreaterThan(2);
    expect(mixed, 'chunks of MSGPACK and XOR bodies (nulls and NaN payloads)').toBeGreaterThan(0);
  });

  it('read the same through chunk spans when no sidecar bytes may be held', async () => {
    const { v5, v4, firstUs, lastUs } = await pair();
    limits.seriesIndexHeldBytesMax = 0;
    limits.seriesIndexReadSpanBytesMax = 4096; // many spans, of chunks and of bodies
    const rand = rng(SEED + 4);
    for (let round = 0; round < 6; round++) {
      const ids = v5.paths.map((_, id) => id).filter(() => rand() < 0.5);
      expect(await readSeriesExact(v5, firstUs - 1, lastUs, true, ids), `round ${round} (seed ${SEED})`).toEqual(await readSeriesExact(v4, firstUs - 1, lastUs, true, ids));
    }
    expect(seriesIndexOf(v5).heldBytesNow).toBe(0);
    expect(seriesIndexOf(v5).stats.reads).toBeGreaterThan(0);
    expect(seriesIndexOf(v5).stats.damaged + seriesIndexOf(v5).stats.fallbacks).toBe(0);
  });

  it('keep both versions at start: neither a version-4 nor a version-5 sidecar is built again', async () => {
    const { v5, v4 } = await pair();
    const dirs = [v5.dir, v4.dir];
    await v5.close();
    await v4.close();
    for (const dir of dirs) {
      const a = await Archive.open(dir, { flushIntervalMs: 0 });
      cleanup.push(() => a.close());
      const store = await startSeriesIndex(a);
      await store.whenIdle();
      expect(store.stats.built, dir).toBe(0);
      expect(store.stats.damaged, dir).toBe(0);
    }
  });

  it('refuse a reference outside its block\'s column bodies (another block\'s body of the same kind and count), even with every CRC32C made to match', async () => {
    const { v5, dir5, firstUs, lastUs } = await pair();
    const want = await readSeriesExact(v5, firstUs - 1, lastUs, false);
    const f = sealed(v5)[0]!;
    const file = sidecarPath(v5, f.name);
    const bytes = await readFile(file);
    const { ix, indexOffset } = indexOf(v5, f, bytes);
    const segment = await readFile(join(dir5, f.name));
    const chunks = refChunks(bytes, ix);
    // The index as entries, to encode again with one reference moved.
    const entries: IndexEntry[] = [...ix.ids].map((id, p) => ({
      id, flags: ix.flags[p] as number,
      chunks: chunks.filter((c) => c.place.id === id).map(({ at, chunk }) => ({ slice: ix.slice[at] as number, offset: ix.offset[at] as number, bytes: ix.bytes[at] as number, n: ix.n[at] as number, first: ix.first[at] as number, last: ix.last[at] as number, refs: chunk.refs })),
    }));
    // A chunk's last reference moved onto another path's body of the same kind and count in
    // a later block, its block number kept, its chunk's CRC32C of the bodies computed over
    // those bytes (a chunk of the same length): it decodes, to other values.
    let forged: Uint8Array | undefined;
    for (const { at, place, chunk } of chunks) {
      const last = chunk.refs.at(-1)!;
      const other = chunks.flatMap((x) => x.chunk.refs).find((r) => r.block > last.block && r.kind === last.kind && r.count === last.count && Buffer.compare(segment.subarray(r.offset, r.offset + r.bytes), segment.subarray(last.offset, last.offset + last.bytes)) !== 0);
      if (!other) continue;
      const refs = [...chunk.refs.slice(0, -1), { ...other, block: last.block }];
      let crc = 0;
      for (const r of refs) crc = crc32c(segment.subarray(r.offset, r.offset + r.bytes), crc);
      const w = new ByteWriter(1 << 12);
      encodeRefChunk(w, chunk.ts, Uint32Array.from(chunk.ts, (_, i) => i), 0, chunk.n, crc, place);
      if (w.pos !== (ix.bytes[at] as number)) continue;
      bytes.set(w.buf.subarray(0, w.pos), ix.offset[at] as number);
      const e = entries.find((x) => x.id === place.id)!;
      e.chunks.find((c) => c.slice === place.slice)!.refs = refs;
      const index = encodeIndex(entries, f.firstTs!);
      const header = encodeHeader({ archiveId: v5.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: v5.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs!, version: SIDECAR_REFS_VERSION, indexOffset, indexBytes: index.stored.length, indexRawBytes: index.rawBytes, indexCrc: crc32c(index.stored) });
      forged = Buffer.concat([header, bytes.subarray(HEADER_BYTES, indexOffset), index.stored]);
      break;
    }
    expect(forged, 'a chunk of the same length').toBeDefined();
    await v5.close();
    await writeFile(file, forged!);
    const a = await Archive.open(dir5, { readonly: true });
    try {
      expect(await readSeriesExact(a, firstUs - 1, lastUs, true), `seed ${SEED}`).toEqual(want);
      expect(seriesIndexOf(a).stats.damaged).toBeGreaterThan(0);
    } finally {
      await a.close();
    }
    const report = await verifyArchive(dir5);
    expect(report.problems.map((q) => q.message).join('; ')).toMatch(/outside the bodies of delta block/);
  });

  it('decode a hostile version-5 index (bytes changed, set to 0xff, cut) to an index whose bounds hold, or refuse it with TPD_CORRUPT_BLOCK', async () => {
    const { v5 } = await pair();
    const f = sealed(v5)[0]!;
    const bytes = await readFile(sidecarPath(v5, f.name));
    const id = { archiveId: v5.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: v5.table(f).deltas.length, firstTs: f.firstTs!, lastTs: f.lastTs! };
    const h = decodeHeader(bytes, id, bytes.length);
    const stored = bytes.subarray(h.indexOffset);
    const raw = h.indexRawBytes === h.indexBytes ? stored : new Uint8Array(inflateRawSync(stored));
    const rand = rng(SEED + 3);
    let refused = 0;
    for (let round = 0; round < 400; round++) {
      const bad = raw.slice(0, round % 10 === 0 ? Math.floor(rand() * raw.length) : raw.length);
      for (let k = 0; k < 1 + Math.floor(rand() * 3); k++) {
        const at = Math.floor(rand() * bad.length);
        bad[at] = round % 3 === 0 ? 0xff : (bad[at] as number) ^ (1 << Math.floor(rand() * 8));
      }
      const hh = { ...h, indexBytes: bad.length, indexRawBytes: bad.length, indexCrc: crc32c(bad) };
      try {
        const ix = decodeIndex(bad, hh);
        const t = ix.refs!;
        // What was accepted holds every bound a read relies on.
        for (let c = 0; c < ix.n.length; c++) {
          let values = 0;
          for (let i = t.start[c] as number; i < (t.start[c + 1] as number); i++) {
            expect(t.block[i]).toBeLessThan(id.deltaBlocks);
            expect((t.offset[i] as number) + (t.bytes[i] as number)).toBeLessThanOrEqual(f.committedBytes);
            values += t.count[i] as number;
          }
          expect(values).toBe(ix.n[c]);
        }
      } catch (err) {
        expect(isTapedeckError(err) && err.code, `round ${round} (seed ${SEED}): ${String(err)}`).toBe('TPD_CORRUPT_BLOCK');
        refused++;
      }
    }
    expect(refused).toBeGreaterThan(100);
  });

  it('never read damage of a version-5 sidecar or of a body it points at as values: fall back to the blocks, and verify reports it', async () => {
    const { v5, dir5, firstUs, lastUs } = await pair();
    const rand = rng(SEED + 2);
    const f = sealed(v5)[1]!;
    const file = sidecarPath(v5, f.name);
    const segment = join(dir5, f.name);
    const want = await readSeriesExact(v5, firstUs - 1, lastUs, false);
    const pristine = await readFile(file);
    const pristineSegment = await readFile(segment);
    const { ix, indexOffset } = indexOf(v5, f, pristine);
    // A referenced body: one of a chunk's references.
    const chunks = refChunks(pristine, ix);
    const { at: c, place, chunk } = chunks[Math.floor(rand() * chunks.length)]!;
    const off = ix.offset[c] as number;
    const ref = chunk.refs[Math.floor(rand() * chunk.refs.length)]!;
    const coveredIds = [...ix.ids].filter((_, q) => ((ix.flags[q] as number) & FLAG_NOT_COVERED) === 0);
    await v5.close();
    const damages: Array<{ what: string; at: number; segment?: boolean; mask?: number }> = [];
    for (const at of [0, 8, 12, 24, 48, 60, 84]) damages.push({ what: `header byte ${at}`, at });
    // 5 with bit 2 flipped reads as 1, a version an earlier release wrote: damage all the same.
    damages.push({ what: 'version 5 flipped to 1', at: 8, mask: 4 });
    for (let i = 0; i < 10; i++) {
      const d = Math.floor(rand() * ix.offset.length);
      damages.push({ what: `chunk ${d} byte`, at: (ix.offset[d] as number) + Math.floor(rand() * (ix.bytes[d] as number)) });
    }
    // The last bytes of a chunk: its references' CRC32C.
    damages.push({ what: `chunk ${c}'s bodies CRC32C`, at: off + (ix.bytes[c] as number) - 1 });
    damages.push({ what: 'index byte', at: indexOffset + Math.floor(rand() * (pristine.length - indexOffset)) });
    damages.push({ what: `body of path ${place.id} in block ${ref.block}`, at: ref.offset + Math.floor(rand() * ref.bytes), segment: true });
    for (const d of damages) {
      await writeFile(file, pristine);
      await writeFile(segment, pristineSegment);
      await xorByte(d.segment ? segment : file, d.at, d.mask ?? 1 << Math.floor(rand() * 8));
      const a = await Archive.open(dir5, { readonly: true });
      try {
        const store = seriesIndexOf(a);
        if (d.segment) {
          // Covered paths only (the others are read from the blocks anyway): the sidecar is
          // found damaged, and the blocks refuse the damaged frame: an error, never other values.
          const err = await readSeriesExact(a, firstUs - 1, lastUs, true, coveredIds).then(() => undefined, (e: unknown) => e);
          expect(isTapedeckError(err) && err.code, `${d.what} (seed ${SEED})`).toBe('TPD_CORRUPT_BLOCK');
        } else {
          expect(await readSeriesExact(a, firstUs - 1, lastUs, true), `${d.what} (seed ${SEED})`).toEqual(want);
        }
        expect(store.stats.damaged, `${d.what}: found damaged (seed ${SEED})`).toBeGreaterThan(0);
      } finally {
        await a.close();
      }
      const report = await verifyArchive(dir5);
      expect(report.ok, `${d.what}: verify (seed ${SEED})`).toBe(false);
      expect(report.problems.some((q) => q.file === (d.segment ? f.name : `series-index/${f.name}.sidx`)), `${d.what}: ${JSON.stringify(report.problems)}`).toBe(true);
    }
    await writeFile(file, pristine);
    await writeFile(segment, pristineSegment);
    expect((await verifyArchive(dir5)).ok).toBe(true);
  });
});

describe('span reader (storage/series-index/span-reader.ts)', () => {
  it('reads many spans of a file in one round trip and hands back the pieces asked, in their order; a span past the end short', async () => {
    const dir = await tmpDir();
    const bytes = new Uint8Array(100_000).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
    await writeFile(join(dir, 'f'), bytes);
    const fh = await open(join(dir, 'f'), 'r');
    try {
      const rand = rng(SEED + 5);
      const start: number[] = [];
      const length: number[] = [];
      for (let i = 0; i < 400; i++) {
        start.push(Math.floor(rand() * 99_000));
        length.push(Math.floor(rand() * 300));
      }
      // Overlapping the end, then wholly past it.
      start.push(99_950, 200_000);
      length.push(100, 10);
      // Pieces: parts of the spans (by their place in the spans read back to back), shuffled.
      const spansBytes = length.reduce((x, y) => x + y, 0);
      const from: number[] = [];
      const bytesOf: number[] = [];
      for (let j = 0; j < 300; j++) {
        const at = Math.floor(rand() * spansBytes);
        from.push(at);
        bytesOf.push(Math.min(spansBytes - at, Math.floor(rand() * 200)));
      }
      // Each span's bytes as read (zeros past the file's end), back to back.
      const spansRead = new Uint8Array(spansBytes);
      for (let i = 0, at = 0; i < start.length; at += length[i]!, i++) spansRead.set(bytes.subarray(start[i], start[i]! + length[i]!), at);
      const got = await Promise.all([0, 1].map(() => readSpans(fh.fd, { start: Float64Array.from(start), length: Uint32Array.from(length), from: Float64Array.from(from), bytes: Uint32Array.from(bytesOf) })));
      for (const r of got) {
        for (let i = 0; i < start.length; i++) expect(r.got[i], `span ${i}`).toBe(bytes.subarray(start[i], start[i]! + length[i]!).length);
        expect(r.pieces.length).toBe(bytesOf.reduce((x, y) => x + y, 0));
        for (let j = 0, at = 0; j < from.length; at += bytesOf[j]!, j++) {
          expect(Buffer.compare(r.pieces.subarray(at, at + bytesOf[j]!), spansRead.subarray(from[j], from[j]! + bytesOf[j]!)), `piece ${j}`).toBe(0);
        }
      }
    } finally {
      await fh.close();
    }
  });

  it('refuses a read of a closed descriptor with the system\'s code, and reads again after', async () => {
    const dir = await tmpDir();
    await writeFile(join(dir, 'f'), new Uint8Array([1, 2, 3, 4]));
    const fh = await open(join(dir, 'f'), 'r');
    const fd = fh.fd;
    await fh.close();
    const err = await readSpans(fd, { start: new Float64Array([0]), length: new Uint32Array([4]), from: new Float64Array([0]), bytes: new Uint32Array([4]) }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SpanReadError);
    expect((err as SpanReadError).code).toBe('EBADF');
    const again = await open(join(dir, 'f'), 'r');
    try {
      const r = await readSpans(again.fd, { start: new Float64Array([1]), length: new Uint32Array([2]), from: new Float64Array([1, 0]), bytes: new Uint32Array([1, 1]) });
      expect([...r.pieces]).toEqual([3, 2]);
    } finally {
      await again.close();
    }
  });

  it('makes the reads of a thread stopped under them on this thread: the same bytes; the next read starts another', async () => {
    const dir = await tmpDir();
    const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 13 + (i >> 9)) & 0xff);
    await writeFile(join(dir, 'f'), bytes);
    const fh = await open(join(dir, 'f'), 'r');
    try {
      // Enough spans that the thread is still reading them when it is stopped.
      const spans = 20_000;
      const start = Float64Array.from({ length: spans }, (_, i) => (i * 4099) % ((1 << 20) - 64));
      const length = new Uint32Array(spans).fill(64);
      const from = Float64Array.from({ length: spans }, (_, i) => (spans - 1 - i) * 64);
      const want = new Uint8Array(spans * 64);
      for (let i = 0; i < spans; i++) want.set(bytes.subarray(start[i], start[i]! + 64), i * 64);
      const q = { start, length, from, bytes: length };
      await readSpans(fh.fd, q); // the thread started
      const before = { ...spanReaderStats };
      const reads = [readSpans(fh.fd, q), readSpans(fh.fd, q)];
      await stopSpanReader();
      for (const r of await Promise.all(reads)) {
        // Pieces in reverse order of the spans.
        for (let i = 0; i < spans; i += 997) expect(Buffer.compare(r.pieces.subarray((spans - 1 - i) * 64, (spans - i) * 64), want.subarray(i * 64, (i + 1) * 64)), `span ${i}`).toBe(0);
      }
      expect(spanReaderStats.hereReads - before.hereReads, 'reads made here').toBeGreaterThan(0);
      await readSpans(fh.fd, q);
      expect(spanReaderStats.threadReads - before.threadReads, 'the next read by a new thread').toBeGreaterThan(0);
    } finally {
      await fh.close();
    }
  });

  it('keeps the process alive while a read is in flight, and lets it exit once none is', async () => {
    const dir = await tmpDir();
    await writeFile(join(dir, 'f'), new Uint8Array([9, 8, 7]));
    // Top-level awaits on reads and nothing else to wait for (the thread started and idle
    // before the later ones): each printed, then a clean exit.
    const script = [
      `const { readSpans } = await import(${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../storage/series-index/span-reader.ts')).href)});`,
      `const { open } = await import('node:fs/promises');`,
      `const fh = await open(${JSON.stringify(join(dir, 'f'))}, 'r');`,
      'for (let i = 0; i < 3; i++) {',
      '  const r = await readSpans(fh.fd, { start: new Float64Array([0, 2]), length: new Uint32Array([1, 1]), from: new Float64Array([0, 1]), bytes: new Uint32Array([1, 1]) });',
      '  console.log(JSON.stringify([...r.pieces]));',
      '  await new Promise((resolve) => setTimeout(resolve, 20));',
      '}',
      'await fh.close();',
    ].join('\n');
    const { code, out, err } = await runScript(script);
    expect(code, err.slice(-400)).toBe(0);
    expect(out.trim().split('\n')).toEqual(['[9,7]', '[9,7]', '[9,7]']);
  }, 60_000);
});
