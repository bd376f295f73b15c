/**
 * What a version-5 sidecar's build (build.ts) needs of a compacted segment: whether every
 * DELTA frame is codec 3 (split: its column bodies verbatim in the file), and per block
 * where each path's column body lies in the file, with its bytes (for the chunk's CRC32C).
 */
import { TapedeckError } from '../../protocol/errors.js';
import type { Archive } from '../archive.js';
import type { BlockRow } from '../catalog-rows.js';
import { columnBodies } from '../codec/column-bodies.js';
import { ColumnKind } from '../codec/columns.js';
import { crc32c } from '../codec/crc.js';
import { Codec, decodeFrameHeader, FRAME_HEADER_BYTES } from '../codec/frame.js';
import { splitBodiesOffset, splitHeadRawBytes } from '../codec/frame-split.js';
import type { FileEntry } from '../file-list.js';
import type { BodyRef } from './chunk-refs.js';

/** A path's column body in one block: where it lies, and its bytes (a view of the block's frame). */
interface Body {
  ref: BodyRef;
  bytes: Uint8Array;
}

/** One delta block's column bodies by path id; null for a path with two columns in the block (never written so: not covered). */
export type BlockBodies = Map<number, Body | null>;

/** Whether every delta block of `f` is a codec-3 frame (then its sidecar is version 5). Reads each frame's header. */
export async function allSplit(a: Archive, f: FileEntry): Promise<boolean> {
  const t = a.table(f);
  if (t.deltas.length === 0) return false;
  for (const di of t.deltas) {
    const head = decodeFrameHeader(await a.readBytes(f, t.row(di).offset, FRAME_HEADER_BYTES));
    if (typeof head === 'string' || head.codec !== Codec.SPLIT) return false;
  }
  return true;
}

/**
 * The column bodies of delta block `block` (its ordinal among the file's delta blocks),
 * after its frame is checked as every read checks it (CRC32C, its catalog row). Throws
 * TPD_CORRUPT_BLOCK for a frame that is not codec 3 (the file changed under the build).
 */
export async function blockBodies(a: Archive, f: FileEntry, row: BlockRow, block: number): Promise<BlockBodies> {
  const frame = await a.readBytes(f, row.offset, row.frameBytes);
  const head = decodeFrameHeader(frame);
  if (typeof head === 'string' || head.codec !== Codec.SPLIT) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${f.name}: block at ${row.offset} is no longer codec 3`, { file: f.name });
  // Checked, and decoded before any await (payloadOf's buffer is reused).
  const raw = a.payloadOf(f, row, frame);
  const stored = frame.subarray(FRAME_HEADER_BYTES);
  // Raw payload byte x >= H lies at frame byte FRAME_HEADER_BYTES + splitBodiesOffset + x - H.
  const shift = FRAME_HEADER_BYTES + splitBodiesOffset(stored) - splitHeadRawBytes(stored);
  const out: BlockBodies = new Map();
  for (const c of columnBodies(raw)) {
    const ref: BodyRef = { block, kind: c.kind, count: c.count, offset: row.offset + shift + c.start, bytes: c.end - c.start };
    out.set(c.id, out.has(c.id) ? null : { ref, bytes: frame.subarray(shift + c.start, shift + c.end) });
  }
  return out;
}

/**
 * A path's references over a slice's blocks (in order) and the CRC32C of their bytes, or
 * undefined when its chunk could not give what version 4 gives: a block with two columns
 * of the path, counts other than its `samples` updates, or bodies whose kinds would decode
 * to another form than version 4's (a MSGPACK body exactly when the slice holds a null:
 * version 4 re-encodes the slice's values as one column, MSGPACK only then).
 */
export function refsOf(blocks: readonly BlockBodies[], id: number, samples: number, hasNull: boolean): { refs: BodyRef[]; crc: number } | undefined {
  const refs: BodyRef[] = [];
  let crc = 0;
  let count = 0;
  let msgpack = false;
  for (const b of blocks) {
    const body = b.get(id);
    if (body === undefined) continue;
    if (body === null) return undefined;
    refs.push(body.ref);
    crc = crc32c(body.bytes, crc);
    count += body.ref.count;
    if (body.ref.kind === ColumnKind.MSGPACK) msgpack = true;
  }
  if (count !== samples || msgpack !== hasNull) return undefined;
  return { refs, crc };
}
