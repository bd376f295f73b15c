/**
 * Reads what version-5 chunks (chunk-refs.ts) point at: the column bodies in their segment
 * file, nearby bodies in one span (the bodies of one path in consecutive blocks, of
 * neighbouring paths in one block), every span of a read in one round trip to the span
 * reader (span-reader.ts: a series of a compacted day lies in about 400 blocks, a span each),
 * then decodes each chunk's values after their CRC32C is checked. Any failure throws: the
 * caller (store.ts) treats it as a damaged sidecar (or segment) and reads the blocks, whose
 * checks say which.
 */
import type { Archive } from '../archive.js';
import { FRAME_HEADER_BYTES } from '../codec/frame.js';
import { SPLIT_LENGTHS_BYTES } from '../codec/frame-split.js';
import type { FileEntry } from '../file-list.js';
import { STORAGE_LIMITS } from '../limits.js';
import type { SeriesRun } from '../series-cache.js';
import { decodeRefValues, type RefChunk } from './chunk-refs.js';
import type { ChunkPlace } from './chunk.js';
import { corrupt } from './format.js';
import { readSpans, type SpanBytes, type Spans } from './span-reader.js';

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
  // Every reference's offset and length, in chunk order; `first[k]`: chunk k's first.
  const offset = new Float64Array(n);
  const bytes = new Uint32Array(n);
  const first = new Uint32Array(pending.length + 1);
  let sorted = true;
  let r = 0;
  for (let k = 0; k < pending.length; k++) {
    const p = pending[k] as PendingChunk;
    first[k] = r;
    for (const ref of p.chunk.refs) {
      // Within its block's column bodies (after the frame's header and split lengths): never the bytes of another frame.
      const di = t.deltas[ref.block];
      const row = di === undefined ? undefined : t.row(di);
      if (!row || ref.offset < row.offset + FRAME_HEADER_BYTES + SPLIT_LENGTHS_BYTES || ref.offset + ref.bytes > row.offset + row.frameBytes) throw corrupt(`a reference of path ${p.place.id} lies outside the bodies of delta block ${ref.block}`);
      offset[r] = ref.offset;
      bytes[r] = ref.bytes;
      if (r > 0 && ref.offset < (offset[r - 1] as number)) sorted = false;
      r++;
    }
  }
  first[pending.length] = n;
  // References by offset (one chunk's are: its blocks in file order).
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  if (!sorted) order.sort((x, y) => (offset[x] as number) - (offset[y] as number));
  const { requests, req, span, at } = requestsOf(offset, bytes, order);
  const read = await a.withReadFd(f, (fd) => Promise.all(requests.map((q) => readSpans(fd, q))));
  const out = new Map<number, SeriesRun>();
  for (let k = 0; k < pending.length; k++) {
    const p = pending[k] as PendingChunk;
    const base = first[k] as number;
    const d = decodeRefValues(p.chunk, (i) => {
      const x = base + i;
      const q = req[x] as number;
      const s = span[x] as number;
      const { bytes: b, got } = read[q] as SpanBytes;
      // A body past the file's end comes back short: decodeRefValues refuses it.
      const had = (got[s] as number) - ((offset[x] as number) - ((requests[q] as Spans).start[s] as number));
      return b.subarray(at[x] as number, (at[x] as number) + Math.max(0, Math.min(bytes[x] as number, had)));
    }, p.place);
    out.set(p.at, { n: d.n, ts: d.ts, num: d.num, values: d.values });
  }
  return out;
}

/**
 * The spans to read for references [offset, offset + bytes) taken in `order` (by offset):
 * references closer than seriesIndexReadGapBytes share a span of at most
 * seriesIndexReadSpanBytesMax, spans go into requests of at most that many bytes together
 * (one round trip each); per reference, its request, its span there and where its bytes
 * start in the request's bytes.
 */
function requestsOf(offset: Float64Array, bytes: Uint32Array, order: Uint32Array): { requests: Spans[]; req: Uint32Array; span: Uint32Array; at: Float64Array } {
  const gap = STORAGE_LIMITS.seriesIndexReadGapBytes;
  const spanMax = STORAGE_LIMITS.seriesIndexReadSpanBytesMax;
  const n = order.length;
  const req = new Uint32Array(n);
  const span = new Uint32Array(n);
  const at = new Float64Array(n);
  const requests: Spans[] = [];
  let starts: number[] = [];
  let lengths: number[] = [];
  let requestBytes = 0;
  const flush = (): void => {
    requests.push({ start: Float64Array.from(starts), length: Uint32Array.from(lengths) });
    starts = [];
    lengths = [];
    requestBytes = 0;
  };
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
    if (starts.length > 0 && requestBytes + end - start > spanMax) flush();
    for (; i < j; i++) {
      const x = order[i] as number;
      req[x] = requests.length;
      span[x] = starts.length;
      at[x] = requestBytes + (offset[x] as number) - start;
    }
    starts.push(start);
    lengths.push(end - start);
    requestBytes += end - start;
  }
  if (starts.length > 0) flush();
  return { requests, req, span, at };
}
