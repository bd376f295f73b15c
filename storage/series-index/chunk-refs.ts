/**
 * The chunks of a version-5 sidecar (format.ts SIDECAR_REFS_VERSION), built for a segment
 * whose every DELTA frame is codec 3 (codec/frame-split.ts: column bodies verbatim in the
 * file): a path's times over one slice, as version 4 holds them (chunk.ts), and instead of
 * its values, the CRC32C of its column bodies in the segment file (a read of a body alone
 * skips its frame's CRC32C, so damage in the segment is caught here); where those bodies
 * are is in the chunk's index entry (index-refs.ts). Pure: build.ts encodes them, store.ts
 * reads the bodies and decodes them here with the archive's own column decoders
 * (codec/column-decode.ts), so that a chunk gives exactly what its version-4 chunk would.
 *
 * Body (docs/format.md, "Per-series sidecar (version 5)"): the sample count and times (as
 * version 4), then the u32 CRC32C of the referenced bytes, in order. The chunk's own
 * CRC32C (over its place) and flags as version 4's.
 */
import { valueArray, type Value } from '../../protocol/value.js';
import { ByteReader, ByteWriter } from '../codec/bytes.js';
import { ColumnKind, decodeColumnBody, decodeColumnBodyF64 } from '../codec/columns.js';
import { crc32c } from '../codec/crc.js';
import { encodeTimes, openChunk, sealChunk, type ChunkPlace, type DecodedChunk } from './chunk.js';
import { corrupt } from './format.js';

/** One column body of a path in the segment file. */
export interface BodyRef {
  /** Ordinal of its block among the file's delta blocks. */
  block: number;
  kind: number;
  count: number;
  /** Absolute offset in the segment file, and length. */
  offset: number;
  bytes: number;
}

/** A version-5 chunk once opened: its times, its references, and the CRC32C their bytes must have. */
export interface RefChunk {
  n: number;
  ts: Float64Array;
  refs: BodyRef[];
  crc: number;
}

/** Bound on a version-5 body's raw length a sample (checked before an LZ4 body is inflated): a time, at most ~10 bytes; the CRC32C is in RAW_BYTES_SLACK. */
const REF_RAW_BYTES_PER_SAMPLE_MAX = 16;

const bodyWriter = new ByteWriter(1 << 12);

/** Appends the chunk at `place`: times ts[order[from..to)], then the CRC32C of its bodies' bytes. */
export function encodeRefChunk(w: ByteWriter, ts: Float64Array, order: Uint32Array, from: number, to: number, bodiesCrc: number, place: ChunkPlace): void {
  const body = bodyWriter;
  body.reset();
  const flags = encodeTimes(body, ts, order, from, to);
  body.ensure(4);
  body.view.setUint32(body.pos, bodiesCrc, true);
  body.pos += 4;
  sealChunk(w, body, flags, to - from, REF_RAW_BYTES_PER_SAMPLE_MAX, place);
}

/**
 * Opens the version-5 chunk at `place`: its CRC32C, flags, count and times checked as
 * version 4's (chunk.ts openChunk), then the CRC32C its bodies must have; `refs` are its
 * bodies, from its index entry (checked there: index-refs.ts).
 */
export function decodeRefChunk(buf: Uint8Array, n: number, first: number, last: number, place: ChunkPlace, refs: BodyRef[]): RefChunk {
  const { r, ts } = openChunk(buf, n, first, last, place, REF_RAW_BYTES_PER_SAMPLE_MAX);
  const crc = r.bytes(4);
  if (r.pos !== r.end) throw corrupt('trailing bytes in a chunk');
  return { n, ts, refs, crc: new DataView(crc.buffer, crc.byteOffset, 4).getUint32(0, true) };
}

/**
 * The chunk's values from its referenced bytes (`bodyOf(i)`: reference i's bytes, read
 * from the segment file): decodeJoinedRefValues of them back to back.
 */
export function decodeRefValues(c: RefChunk, bodyOf: (i: number) => Uint8Array, place: ChunkPlace): DecodedChunk {
  const refs = c.refs;
  let total = 0;
  for (let i = 0; i < refs.length; i++) {
    if (bodyOf(i).length !== (refs[i] as BodyRef).bytes) throw corrupt(`segment ends inside a referenced body (path ${place.id})`);
    total += (refs[i] as BodyRef).bytes;
  }
  const joined = new Uint8Array(total);
  for (let i = 0, at = 0; i < refs.length; at += (refs[i] as BodyRef).bytes, i++) joined.set(bodyOf(i), at);
  return decodeJoinedRefValues(c, joined, place);
}

/**
 * The chunk's values from its referenced bytes back to back (`bodies`: reference i's right
 * after reference i - 1's), after their CRC32C is checked: numbers in `num` (their bits kept)
 * unless a body is MSGPACK (the path holds nulls there), then every value in `values`, as
 * a version-4 chunk of the same samples gives them (build.ts covers a path only then). Each
 * body must end exactly at its length (a decoder reading on into the next body is refused
 * there: the reader's bound is the last body's end).
 */
export function decodeJoinedRefValues(c: RefChunk, bodies: Uint8Array, place: ChunkPlace): DecodedChunk {
  const refs = c.refs;
  let msgpack = false;
  let total = 0;
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i] as BodyRef;
    total += ref.bytes;
    if (ref.kind === ColumnKind.MSGPACK) msgpack = true;
  }
  if (bodies.length !== total) throw corrupt(`segment ends inside a referenced body (path ${place.id})`);
  if (crc32c(bodies) !== c.crc) throw corrupt(`referenced column bodies CRC32C mismatch (path ${place.id}, slice ${place.slice}): the sidecar or its segment is damaged`);
  const num = msgpack ? undefined : new Float64Array(c.n);
  const values = msgpack ? valueArray(c.n) : undefined;
  const r = new ByteReader(bodies);
  let at = 0;
  for (let i = 0; i < refs.length; i++) {
    const ref = refs[i] as BodyRef;
    const end = r.pos + ref.bytes;
    if (num) decodeColumnBodyF64(ref.kind, r, num, at, at + ref.count);
    else decodeColumnBody(ref.kind, r, values as Value[], at, at + ref.count);
    if (r.pos !== end) throw corrupt(`referenced body of path ${place.id} holds ${r.pos < end ? 'more' : 'fewer'} than its ${ref.count} values`);
    at += ref.count;
  }
  return { n: c.n, ts: c.ts, num, values };
}
