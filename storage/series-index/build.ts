/**
 * Builds the per-series sidecar of one sealed, local segment file (format.ts): reads its
 * delta blocks in order, and every STORAGE_LIMITS.seriesIndexSliceUpdatesMax updates
 * writes one chunk per path of that slice, so memory stays bounded whatever the file's
 * size. The chunks are written slice by slice to a scratch file, then copied path by path
 * into the sidecar (a path's chunks one after the other: a series is one read, not one per
 * slice), in groups of consecutive paths of at most seriesIndexWriteBytes, each group read
 * with one I/O per slice. Written to a temporary name, fsynced, then renamed into place and
 * the directory fsynced: a crash leaves either no sidecar or a whole one (temporary files
 * are never read, and the next build removes them).
 */
import { constants } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { makeDirectory } from '../archive-dir.js';
import { join } from 'node:path';
import { TapedeckError } from '../../protocol/errors.js';
import { valueArray, type Value } from '../../protocol/value.js';
import type { Archive } from '../archive.js';
import { ByteWriter } from '../codec/bytes.js';
import { crc32c } from '../codec/crc.js';
import type { DecodedBatches } from '../codec/payload.js';
import type { FileEntry } from '../file-list.js';
import { STORAGE_LIMITS } from '../limits.js';
import { fsyncDir } from '../open-file.js';
import { readExactly } from '../segment-file.js';
import { allSplit, blockBodies, refsOf, type BlockBodies } from './build-refs.js';
import { encodeChunk } from './chunk.js';
import { encodeRefChunk } from './chunk-refs.js';
import { encodeHeader, encodeIndex, FLAG_NOT_COVERED, HEADER_BYTES, SIDECAR_REFS_VERSION, SIDECAR_VERSION, type IndexEntry, type SegmentIdentity } from './format.js';

export const SIDECAR_DIR = 'series-index';
export const SIDECAR_SUFFIX = '.sidx';
export const TEMP_SUFFIX = '.tmp';
/** The scratch file of a build's slice-ordered chunks, beside its temporary sidecar (ends in TEMP_SUFFIX: removed at start if left). */
const SLICES_SUFFIX = '.slices' + TEMP_SUFFIX;

export function sidecarDir(a: Archive): string {
  return join(a.dir, SIDECAR_DIR);
}

export function sidecarPath(a: Archive, segmentName: string): string {
  return join(sidecarDir(a), segmentName + SIDECAR_SUFFIX);
}

/**
 * Opens a sidecar to read it. Never waits at the open: a FIFO put at its name, opened without
 * O_NONBLOCK, would hold the open (and one of libuv's threads) until something wrote to it,
 * and with it the server's start, a query, or a build. What is not a regular file is refused
 * as a damaged sidecar (never read: the blocks answer).
 */
export async function openSidecarFile(path: string): Promise<FileHandle> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw new TapedeckError('TPD_CORRUPT_BLOCK', `series sidecar: ${path} is not a regular file`);
    return fh;
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Creates a build's file: whatever is at its name goes first (a file left by a build cut short,
 * a FIFO, which an open for writing would wait on), then the file is created only if nothing
 * is there (O_EXCL): a build writes only into files it created.
 */
async function createFresh(path: string, flags: 'wx' | 'wx+'): Promise<FileHandle> {
  await rm(path, { force: true });
  return open(path, flags);
}

/** The identity of a segment as the archive knows it now (its block table loaded). */
export function identityOf(a: Archive, f: FileEntry): SegmentIdentity | undefined {
  if (!f.sealed || f.location !== 'local' || f.firstTs === null || f.lastTs === null) return undefined;
  const t = a.table(f);
  let updates = 0;
  for (const i of t.deltas) updates += t.updates(i);
  return { archiveId: a.archiveId, seq: f.seq, name: f.name, committedBytes: f.committedBytes, deltaBlocks: t.deltas.length, firstTs: f.firstTs, lastTs: f.lastTs, updates };
}

export interface BuildOptions {
  /** Awaited after each block read with its updates: the caller's rate limit and yield. */
  pace?: (updates: number) => Promise<void>;
  /** Told once the temporary file exists (tests kill the process around here). */
  onTemp?: (path: string) => void;
}

export interface BuildResult {
  bytes: number;
  paths: number;
  notCovered: number;
}

/** The blocks of one slice, decoded whole, and (version 5) their column bodies. */
interface Slice {
  blocks: DecodedBatches[];
  bodies: BlockBodies[];
  updates: number;
}

/** Writes the sidecar of `f`; throws when the segment cannot be read (the caller logs it and moves on). */
export async function buildSidecar(a: Archive, f: FileEntry, opts: BuildOptions = {}): Promise<BuildResult> {
  const id = identityOf(a, f);
  if (!id) throw new TapedeckError('TPD_BAD_ARGUMENT', `${f.name} is not a sealed local file with batches`);
  await makeDirectory(sidecarDir(a));
  const final = sidecarPath(a, f.name);
  const temp = final + TEMP_SUFFIX;
  const scratchPath = final + SLICES_SUFFIX;
  const fh = await createFresh(temp, 'wx');
  let scratch: FileHandle | undefined;
  let done = false;
  try {
    opts.onTemp?.(temp);
    scratch = await createFresh(scratchPath, 'wx+');
    // A compacted file (every delta block codec 3) gets version 5: chunks point at its column bodies.
    const refs = await allSplit(a, f);
    const out = new SliceWriter(scratch, a.paths.length, refs);
    const t = a.table(f);
    let slice: Slice = { blocks: [], bodies: [], updates: 0 };
    for (let block = 0; block < t.deltas.length; block++) {
      const di = t.deltas[block] as number;
      const row = t.row(di);
      // Evicted meanwhile (the entry is live): give up rather than fetch it back from cold storage.
      if (f.location !== 'local') throw new TapedeckError('TPD_FILE_UNAVAILABLE', `${f.name} left the local disk while its sidecar was built`, { file: f.name });
      const d = await a.readBlockSelected(f, row, () => true);
      slice.blocks.push(d);
      if (refs) slice.bodies.push(await blockBodies(a, f, row, block));
      slice.updates += d.ids.length;
      if (slice.updates >= STORAGE_LIMITS.seriesIndexSliceUpdatesMax) {
        await out.writeSlice(slice);
        slice = { blocks: [], bodies: [], updates: 0 };
      }
      await opts.pace?.(row.updates);
    }
    if (slice.updates > 0) await out.writeSlice(slice);
    const result = await out.finish(id, fh);
    await fh.sync();
    await fh.close();
    done = true;
    await rename(temp, final);
    await fsyncDir(sidecarDir(a));
    return result;
  } finally {
    await scratch?.close().catch(() => undefined);
    await rm(scratchPath, { force: true }).catch(() => undefined);
    if (!done) {
      await fh.close().catch(() => undefined);
      await rm(temp, { force: true });
    }
  }
}

/** Whether a value of vals[order[from..to)] is null. */
function holdsNull(values: readonly Value[], order: Uint32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (values[order[i] as number] === null) return true;
  return false;
}

/** Whether every value is a number or null (what a sidecar holds; other paths are read from the blocks). */
function coverable(values: readonly Value[], order: Uint32Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const v = values[order[i] as number];
    if (typeof v !== 'number' && v !== null) return false;
  }
  return true;
}

class SliceWriter {
  private readonly entries = new Map<number, IndexEntry>();
  private readonly w = new ByteWriter(1 << 20);
  private pos = HEADER_BYTES;
  private slices = 0;
  /** Updates per path id in the slice being written; all zero between slices. */
  private readonly counts: Uint32Array;

  /** `refs`: version 5, chunks point at the segment's column bodies (build-refs.ts). */
  constructor(private readonly fh: FileHandle, paths: number, private readonly refs: boolean) {
    this.counts = new Uint32Array(paths);
  }

  /** One chunk per path of the slice, paths in id order, each path's updates in block order. */
  async writeSlice(s: Slice): Promise<void> {
    const n = s.updates;
    const ts = new Float64Array(n);
    const ids = new Uint32Array(n);
    // Generic elements: a double array would quiet signalling NaNs (protocol/value.ts valueArray).
    const values = valueArray(n);
    let at = 0;
    for (const d of s.blocks) {
      let u = 0;
      for (let b = 0; b < d.counts.length; b++) {
        const time = d.ts[b] as number;
        for (const end = u + (d.counts[b] as number); u < end; u++, at++) {
          ts[at] = time;
          ids[at] = d.ids[u] as number;
          values[at] = d.values[u] as Value;
        }
      }
    }
    // Counting sort by path id, stable: each path's updates stay in time order.
    const counts = this.counts;
    const present: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = ids[i] as number;
      if (counts[id] === 0) present.push(id);
      counts[id] = (counts[id] as number) + 1;
    }
    present.sort((x, y) => x - y);
    const start = new Map<number, number>();
    let acc = 0;
    for (const id of present) {
      start.set(id, acc);
      acc += counts[id] as number;
      counts[id] = 0;
    }
    const order = new Uint32Array(n);
    const next = new Uint32Array(present.length);
    const slot = new Map<number, number>();
    present.forEach((id, k) => {
      slot.set(id, k);
      next[k] = start.get(id) as number;
    });
    for (let i = 0; i < n; i++) {
      const k = slot.get(ids[i] as number) as number;
      order[next[k] as number] = i;
      next[k] = (next[k] as number) + 1;
    }
    for (const id of present) {
      const from = start.get(id) as number;
      const to = next[slot.get(id) as number] as number; // where its fill stopped
      let e = this.entries.get(id);
      if (!e) this.entries.set(id, (e = { id, flags: 0, chunks: [] }));
      if (e.flags & FLAG_NOT_COVERED) continue;
      const covered = coverable(values, order, from, to);
      // Version 5 covers a path only where its bodies decode as version 4's chunk would (refsOf).
      const bodies = covered && this.refs ? refsOf(s.bodies, id, to - from, holdsNull(values, order, from, to)) : undefined;
      if (!covered || (this.refs && bodies === undefined)) {
        e.flags |= FLAG_NOT_COVERED;
        e.chunks = [];
        continue;
      }
      const before = this.w.pos;
      const place = { id, slice: this.slices };
      if (bodies) encodeRefChunk(this.w, ts, order, from, to, bodies.crc, place);
      else encodeChunk(this.w, ts, values, order, from, to, place);
      const bytes = this.w.pos - before;
      e.chunks.push({ slice: this.slices, offset: this.pos + before, bytes, n: to - from, first: ts[order[from] as number] as number, last: ts[order[to - 1] as number] as number, ...(bodies ? { refs: bodies.refs } : {}) });
      if (this.w.pos >= STORAGE_LIMITS.seriesIndexWriteBytes) await this.flush();
    }
    this.slices++;
    await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.w.pos === 0) return;
    await writeAll(this.fh, this.w.buf.subarray(0, this.w.pos), this.pos);
    this.pos += this.w.pos;
    this.w.reset();
  }

  /** Copies the chunks path by path into `out` (their index offsets follow), then writes the index and the header. */
  async finish(id: SegmentIdentity, out: FileHandle): Promise<BuildResult> {
    await this.flush();
    const entries = [...this.entries.values()].sort((x, y) => x.id - y.id);
    const groupMax = STORAGE_LIMITS.seriesIndexWriteBytes;
    let pos = HEADER_BYTES;
    for (let i = 0; i < entries.length; ) {
      let j = i;
      let bytes = 0;
      while (j < entries.length && (j === i || bytes + chunkBytes(entries[j] as IndexEntry) <= groupMax)) bytes += chunkBytes(entries[j++] as IndexEntry);
      pos = await this.copyGroup(entries.slice(i, j), bytes, out, pos);
      i = j;
    }
    const index = encodeIndex(entries, id.firstTs);
    await writeAll(out, index.stored, pos);
    const header = encodeHeader({ ...id, version: this.refs ? SIDECAR_REFS_VERSION : SIDECAR_VERSION, indexOffset: pos, indexBytes: index.stored.length, indexRawBytes: index.rawBytes, indexCrc: crc32c(index.stored) });
    await writeAll(out, header, 0);
    const notCovered = entries.filter((e) => e.flags & FLAG_NOT_COVERED).length;
    return { bytes: pos + index.stored.length, paths: entries.length, notCovered };
  }

  /**
   * Copies the chunks of consecutive paths (`bytes` of them) to `out` at `pos`, path by path,
   * and sets their offsets there. Within a slice they lie together in the scratch (a slice's
   * chunks are in path id order), so a group of at most seriesIndexWriteBytes is read with one
   * I/O per slice; a path larger than that alone is copied a chunk at a time.
   */
  private async copyGroup(group: IndexEntry[], bytes: number, out: FileHandle, pos: number): Promise<number> {
    if (bytes > STORAGE_LIMITS.seriesIndexWriteBytes) {
      for (const e of group) {
        for (const c of e.chunks) {
          await writeAll(out, await this.scratchBytes(c.offset, c.bytes), pos);
          c.offset = pos;
          pos += c.bytes;
        }
      }
      return pos;
    }
    const spans = new Map<number, { start: number; end: number; buf?: Uint8Array }>();
    for (const e of group) {
      for (const c of e.chunks) {
        const s = spans.get(c.slice);
        if (s === undefined) spans.set(c.slice, { start: c.offset, end: c.offset + c.bytes });
        else {
          s.start = Math.min(s.start, c.offset);
          s.end = Math.max(s.end, c.offset + c.bytes);
        }
      }
    }
    for (const s of spans.values()) s.buf = await this.scratchBytes(s.start, s.end - s.start);
    const buf = new Uint8Array(bytes);
    let at = 0;
    for (const e of group) {
      for (const c of e.chunks) {
        const s = spans.get(c.slice) as { start: number; buf: Uint8Array };
        buf.set(s.buf.subarray(c.offset - s.start, c.offset - s.start + c.bytes), at);
        c.offset = pos + at;
        at += c.bytes;
      }
    }
    await writeAll(out, buf, pos);
    return pos + bytes;
  }

  private async scratchBytes(offset: number, length: number): Promise<Uint8Array> {
    const buf = await readExactly(this.fh, length, offset);
    if (buf.length !== length) throw new Error(`sidecar build: scratch file ends at ${offset + buf.length}, before ${offset + length}`);
    return buf;
  }
}

function chunkBytes(e: IndexEntry): number {
  let n = 0;
  for (const c of e.chunks) n += c.bytes;
  return n;
}

async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}
