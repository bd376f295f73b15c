/**
 * Reads what version-5 chunks (chunk-refs.ts) point at: the column bodies in their segment
 * file, nearby bodies in one span (the bodies of one path in consecutive blocks, of
 * neighbouring paths in one block), the spans of up to seriesIndexReadSpanBytesMax of bodies
 * in one round trip to the span reader (span-reader.ts: a series of a compacted day lies in
 * about 400 blocks, a span each), which hands each chunk's bodies back to back; then decodes
 * each chunk's values after their CRC32C is checked (one CRC32C and one reader a chunk).
 * Any failure throws: the caller (store.ts) treats it as a damaged sidecar (or segment) and
 * reads the blocks, whose checks say which.
 */
import type { Archive } from '../archive.js';
import { FRAME_HEADER_BYTES } from '../codec/frame.js';
import { SPLIT_LENGTHS_BYTES } from '../codec/frame-split.js';
import type { FileEntry } from '../file-list.js';
import { STORAGE_LIMITS } from '../limits.js';
import type { SeriesRun } from '../series-cache.js';
import { decodeJoinedRefValues, type RefChunk } from './chunk-refs.js';
import type { ChunkPlace } from './chunk.js';
import { corrupt } from './format.js';
import { readSpans, type SpanBytes, type SpanRequest } from './span-reader.js';

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
  let n = 0;
  for (const p of pending) n += p.chunk.refs.length;
  // Every reference's offset and length, in chunk order; chunk k's are [first[k], first[k + 1]), chunkBytes[k] bytes.
  const offset = new Float64Array(n);
  const bytes = new Uint32Array(n);
  const first = new Uint32Array(pending.length + 1);
  const chunkBytes = new Float64Array(pending.length);
  let r = 0;
  for (let k = 0; k < pending.length; k++) {
    const p = pending[k] as PendingChunk;
    first[k] = r;
    for (const ref of p.chunk.refs) {
      chunkBytes[k] = (chunkBytes[k] as number) + ref.bytes;
      // Within its block's column bodies (after the frame's header and split lengths): never the bytes of another frame.
      const di = t.deltas[ref.block];
      const row = di === undefined ? undefined : t.row(di);
      if (!row || ref.offset < row.offset + FRAME_HEADER_BYTES + SPLIT_LENGTHS_BYTES || ref.offset + ref.bytes > row.offset + row.frameBytes) throw corrupt(`a reference of path ${p.place.id} lies outside the bodies of delta block ${ref.block}`);
      offset[r] = ref.offset;
      bytes[r] = ref.bytes;
      r++;
    }
  }
  first[pending.length] = n;
  // Whole chunks a request, up to seriesIndexReadSpanBytesMax of bodies (at least one chunk).
  const groups: Array<{ from: number; to: number }> = [];
  for (let k = 0; k < pending.length; ) {
    let to = k + 1;
    let sum = chunkBytes[k] as number;
    for (; to < pending.length && sum + (chunkBytes[to] as number) <= STORAGE_LIMITS.seriesIndexReadSpanBytesMax; to++) sum += chunkBytes[to] as number;
    groups.push({ from: k, to });
    k = to;
  }
  const requests = groups.map((g) => requestOf(offset, bytes, first[g.from] as number, first[g.to] as number));
  const read = await a.withReadFd(f, (fd) => Promise.all(requests.map((q) => readSpans(fd, q.request))));
  const out = new Map<number, SeriesRun>();
  groups.forEach((g, q) => {
    const { request, span } = requests[q] as { request: SpanRequest; span: Uint32Array };
    const { pieces, got } = read[q] as SpanBytes;
    const r0 = first[g.from] as number;
    // A body past the file's end comes back short: refused (its chunk cannot be decoded).
    for (let x = r0; x < (first[g.to] as number); x++) {
      const s = span[x - r0] as number;
      const had = (got[s] as number) - ((offset[x] as number) - (request.start[s] as number));
      if (had < (bytes[x] as number)) throw corrupt(`segment ends inside a referenced body (path ${(pending[g.from] as PendingChunk).place.id} or a neighbour)`);
    }
    let at = 0;
    for (let k = g.from; k < g.to; k++) {
      const p = pending[k] as PendingChunk;
      const len = chunkBytes[k] as number;
      const d = decodeJoinedRefValues(p.chunk, pieces.subarray(at, at + len), p.place);
      at += len;
      out.set(p.at, { n: d.n, ts: d.ts, num: d.num, values: d.values });
    }
  });
  return out;
}

/**
 * The request for references [r0, r1) (in chunk order): taken by offset, those closer than
 * seriesIndexReadGapBytes share a span of at most seriesIndexReadSpanBytesMax; the pieces are
 * the references in chunk order (their bytes' place in the spans read one after the other).
 * `span`: each reference's span (by its index from r0).
 */
function requestOf(offset: Float64Array, bytes: Uint32Array, r0: number, r1: number): { request: SpanRequest; span: Uint32Array } {
  const gap = STORAGE_LIMITS.seriesIndexReadGapBytes;
  const spanMax = STORAGE_LIMITS.seriesIndexReadSpanBytesMax;
  const n = r1 - r0;
  // By offset: a chunk's references are (its blocks in file order), chunks one after the other often too.
  const order = new Uint32Array(n);
  let sorted = true;
  for (let i = 0; i < n; i++) {
    order[i] = r0 + i;
    if (i > 0 && (offset[r0 + i] as number) < (offset[r0 + i - 1] as number)) sorted = false;
  }
  if (!sorted) order.sort((x, y) => (offset[x] as number) - (offset[y] as number));
  const span = new Uint32Array(n);
  const from = new Float64Array(n);
  const starts: number[] = [];
  const lengths: number[] = [];
  let spansBytes = 0;
  for (let i = 0; i < n; ) {
    const start = offset[order[i] as number] as number;
    let end = start;
    let j = i;
    while (j < n) {
      const x = order[j] as number;
      const stop = (offset[x] as number) + (bytes[x] as number);
      if (j > i && ((offset[x] as number) - end > gap || stop - start > spanMax)) break;
      end = Math.max(end, stop);
      j++;
    }
    for (; i < j; i++) {
      const x = (order[i] as number) - r0;
      span[x] = starts.length;
      from[x] = spansBytes + (offset[x + r0] as number) - start;
    }
    starts.push(start);
    lengths.push(end - start);
    spansBytes += end - start;
  }
  return { request: { start: Float64Array.from(starts), length: Uint32Array.from(lengths), from, bytes: bytes.slice(r0, r1) }, span };
}
