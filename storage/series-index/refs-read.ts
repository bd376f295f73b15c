/**
 * Reads what version-5 chunks (chunk-refs.ts) point at: the column bodies in their segment
 * file, through the archive's shared handles, nearby bodies in one read (the bodies of one
 * path in consecutive blocks, of neighbouring paths in one block), then decodes each chunk's
 * values after their CRC32C is checked. Any failure throws: the caller (store.ts) treats it
 * as a damaged sidecar (or segment) and reads the blocks, whose checks say which.
 */
import type { Archive } from '../archive.js';
import { FRAME_HEADER_BYTES } from '../codec/frame.js';
import { SPLIT_LENGTHS_BYTES } from '../codec/frame-split.js';
import type { FileEntry } from '../file-list.js';
import { STORAGE_LIMITS } from '../limits.js';
import type { SeriesRun } from '../series-cache.js';
import { decodeRefValues, type BodyRef, type RefChunk } from './chunk-refs.js';
import type { ChunkPlace } from './chunk.js';
import { corrupt } from './format.js';

/** A version-5 chunk read from the sidecar, waiting for its bodies: `at` is its index entry. */
export interface PendingChunk {
  at: number;
  place: ChunkPlace;
  chunk: RefChunk;
}

/** `out` with the runs of `pending` chunks added (none: `out` as it is). */
export async function withRefRuns(a: Archive, f: FileEntry, out: Map<number, SeriesRun>, pending: readonly PendingChunk[]): Promise<Map<number, SeriesRun>> {
  if (pending.length === 0) return out;
  for (const [at, run] of await readRefRuns(a, f, pending)) out.set(at, run);
  return out;
}

/** The runs of `pending` chunks, by index entry, from their bodies in f. */
export async function readRefRuns(a: Archive, f: FileEntry, pending: readonly PendingChunk[]): Promise<Map<number, SeriesRun>> {
  const t = a.table(f);
  const all: Array<{ ref: BodyRef; into: Uint8Array[]; i: number }> = [];
  const bodies = pending.map((p) => {
    const into = new Array<Uint8Array>(p.chunk.refs.length);
    p.chunk.refs.forEach((ref, i) => {
      // Within its block's column bodies (after the frame's header and split lengths): never the bytes of another frame.
      const di = t.deltas[ref.block];
      const row = di === undefined ? undefined : t.row(di);
      if (!row || ref.offset < row.offset + FRAME_HEADER_BYTES + SPLIT_LENGTHS_BYTES || ref.offset + ref.bytes > row.offset + row.frameBytes) throw corrupt(`a reference of path ${p.place.id} lies outside the bodies of delta block ${ref.block}`);
      all.push({ ref, into, i });
    });
    return into;
  });
  all.sort((x, y) => x.ref.offset - y.ref.offset);
  const gap = STORAGE_LIMITS.seriesIndexReadGapBytes;
  const spanMax = STORAGE_LIMITS.seriesIndexReadSpanBytesMax;
  // The reads' spans first, then the reads, up to seriesIndexBodyReadsInFlightMax at once: a
  // series of a day at 131 072 updates a block lies in about 440 blocks, and one read after
  // the other paid a round trip through libuv's threads each.
  const spans: Array<{ from: number; to: number; start: number; end: number }> = [];
  for (let i = 0; i < all.length; ) {
    const start = (all[i] as (typeof all)[number]).ref.offset;
    let end = start;
    let j = i;
    while (j < all.length) {
      const { ref } = all[j] as (typeof all)[number];
      const stop = ref.offset + ref.bytes;
      if (j > i && (ref.offset - end > gap || stop - start > spanMax)) break;
      end = Math.max(end, stop);
      j++;
    }
    spans.push({ from: i, to: j, start, end });
    i = j;
  }
  let next = 0;
  const reader = async (): Promise<void> => {
    while (next < spans.length) {
      const { from, to, start, end } = spans[next++] as (typeof spans)[number];
      const buf = await a.readBytes(f, start, end - start);
      // A body past the file's end comes back short: decodeRefValues refuses it.
      for (let i = from; i < to; i++) {
        const { ref, into, i: k } = all[i] as (typeof all)[number];
        into[k] = buf.subarray(ref.offset - start, ref.offset - start + ref.bytes);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spans.length, STORAGE_LIMITS.seriesIndexBodyReadsInFlightMax) }, reader));
  const out = new Map<number, SeriesRun>();
  pending.forEach((p, k) => {
    const into = bodies[k] as Uint8Array[];
    const d = decodeRefValues(p.chunk, (i) => into[i] as Uint8Array, p.place);
    out.set(p.at, { n: d.n, ts: d.ts, num: d.num, values: d.values });
  });
  return out;
}
