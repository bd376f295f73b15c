/**
 * Frames bounded in bytes. A DELTA block is bounded by its batches (blockRawBytesTarget, and
 * one batch by batchBytesMax), but a PATHS frame holds every path a block or a file's
 * dictionary defines and an IMAGE every path's latest value: as many as the archive has.
 * Past the format's BLOCK_PAYLOAD_BYTES_MAX (64 MiB) such a frame could not be encoded at
 * all, and the writer failed at the seal with the block's DELTA frame queued without its
 * paths (every read of it then failed as corrupt) or at an image or rotation, for good.
 * So both are cut into parts of at most framePartBytesTarget bytes (an upper bound of the
 * raw payload, computed before encoding): consecutive PATHS frames, and consecutive IMAGE
 * frames stamped with one time, which readers take as one image (docs/format.md, "Frames
 * in a file"). A part holds at least one entry; one value is at most batchBytesMax.
 */
import { TapedeckError } from '../protocol/errors.js';
import type { Value } from '../protocol/value.js';
import { MsgpackWriter, msgpackStringBytes } from '../protocol/value-msgpack.js';
import { BlockType, encodeFrame, type FrameMeta } from './codec/frame.js';
import { encodePathDefs, type PathDef } from './codec/payload.js';
import { STORAGE_LIMITS } from './limits.js';

/** An encoded frame on its way to disk, with the path definitions it carries. */
export interface FrameItem {
  kind: 'frame';
  bytes: Uint8Array;
  meta: FrameMeta;
  defs: PathDef[] | undefined;
}

/** Sizes arrays and objects exactly as the archive's msgpack columns will write them. */
const estimateWriter = new MsgpackWriter();

/**
 * A value's bytes in a block, as the batch bound counts them: a string by its UTF-16 length
 * (exact for ASCII; stringBytes gives the real size when it matters), objects exactly.
 */
export function estimateBytes(v: unknown, i: number): number {
  switch (typeof v) {
    case 'number':
      return 3;
    case 'boolean':
      return 1;
    case 'string':
      return v.length + 3;
    case 'undefined':
      return 1;
    case 'bigint':
      return 9;
    case 'object':
      if (v === null) return 1;
      if (v instanceof Uint8Array) return v.length + 5;
      try {
        estimateWriter.reset().value(v as Value);
        return estimateWriter.written().length;
      } catch (err) {
        throw new TapedeckError('TPD_BAD_ARGUMENT', `update ${i}: value cannot be encoded: ${(err as Error).message}`);
      }
    default:
      throw new TapedeckError('TPD_BAD_ARGUMENT', `update ${i}: a ${typeof v} is not a recordable value`);
  }
}

/** A string's bytes in msgpack as the archive writes it, header included (protocol's rule). */
export function stringBytes(s: string): number {
  return msgpackStringBytes(s, utf8Length);
}

/** UTF-8 length of a string (Node's, native). */
function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * The estimate of a batch (estimateBytes' sum `est`, with `strUnits` UTF-16 units of
 * strings in it) made exact for its strings when their worst case (three bytes a unit)
 * could pass `limit`: the UTF-16 length undercounts UTF-8 up to three times.
 */
export function batchBytes(est: number, strUnits: number, values: ArrayLike<unknown>, n: number, limit: number): number {
  if (est + 2 * strUnits + 3 * n <= limit) return est;
  let exact = est;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (typeof v === 'string') exact += stringBytes(v) - (v.length + 3);
  }
  return exact;
}

/** Per update in a payload besides its value: id varint, column kind and length, slack. */
const UPDATE_OVERHEAD_BYTES = 16;

/** An upper bound of one latest value's bytes in an IMAGE payload. */
export function imageValueBytes(v: Value): number {
  if (typeof v === 'number') return UPDATE_OVERHEAD_BYTES + 9;
  if (typeof v === 'string') return UPDATE_OVERHEAD_BYTES + stringBytes(v);
  return UPDATE_OVERHEAD_BYTES + estimateBytes(v, 0);
}

/** A path definition's bytes in a PATHS payload: id and time varints, length, UTF-8. */
function pathDefBytes(d: PathDef): number {
  return 5 + 10 + 5 + utf8Length(d.path);
}

/** PATHS frames for `defs`, each of at most framePartBytesTarget payload bytes. */
export function pathsFrames(defs: readonly PathDef[], baseTs: number): FrameItem[] {
  let from = 0;
  return partEnds(defs.length, (i) => pathDefBytes(defs[i] as PathDef), 16).map((end) => pathsFrame(defs.slice(from, (from = end)), baseTs));
}

function pathsFrame(defs: PathDef[], baseTs: number): FrameItem {
  const ts = defs.length > 0 ? Math.min(baseTs, (defs[0] as PathDef).firstTs) : baseTs;
  const last = defs.length > 0 ? Math.max(ts, (defs[defs.length - 1] as PathDef).firstTs) : ts;
  const meta: FrameMeta = { type: BlockType.PATHS, firstTs: ts, lastTs: last, batches: 0, updates: defs.length };
  return { kind: 'frame', bytes: encodeFrame(meta, encodePathDefs(defs, ts)), meta, defs };
}

/**
 * Where an image of `n` values is cut: the end index of each part, each part's values
 * summing to at most framePartBytesTarget by imageValueBytes (a part holds one value at least).
 */
export function imageParts(values: readonly Value[], n: number): number[] {
  return partEnds(n, (i) => imageValueBytes(values[i] as Value), 64);
}

/**
 * Items [0, n) cut into runs of at most framePartBytesTarget bytes by `bytesOf`, `base`
 * bytes a part besides: each run's end index (one item a run at least; [0] when n is 0).
 */
function partEnds(n: number, bytesOf: (i: number) => number, base: number): number[] {
  const ends: number[] = [];
  const target = STORAGE_LIMITS.framePartBytesTarget;
  let bytes = base;
  let from = 0;
  for (let i = 0; i < n; i++) {
    const b = bytesOf(i);
    if (i > from && bytes + b > target) {
      ends.push(i);
      from = i;
      bytes = base;
    }
    bytes += b;
  }
  ends.push(n);
  return ends;
}
