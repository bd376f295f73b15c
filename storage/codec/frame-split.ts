/**
 * Codec 3, SPLIT (docs/format.md, "Codec 3 (split)"): a layout-2 batch payload stored as
 * its head, LZ4-compressed when that pays, then its column bodies verbatim, so that a
 * reader holding a body's place in the raw payload can read that body alone from the file
 * (rawOffset >= H sits at frame offset + 48 + splitBodiesOffset(stored) + rawOffset - H).
 *
 *   u32 rawLength            the whole raw payload's length (the frame header's raw length)
 *   u32 headRawLength H      raw bytes [0, H): everything before the first column body
 *   u32 headStoredLength Sh  Sh == H: the head verbatim; Sh < H: one LZ4 block (no size
 *                            prefix) decoding to exactly H bytes
 *   Sh bytes                 the head
 *   rawLength - H bytes      raw bytes [H, rawLength), verbatim
 *
 * Pure. codec/frame.ts writes (encodeSplitFrame) and opens (openFrame) such frames.
 */
import { compressSync } from 'lz4-napi';
import { TapedeckError } from '../../protocol/errors.js';
import { lz4CanExpandTo, lz4DecodeInto } from './lz4-block.js';
import { payloadBodiesStart } from './payload-head.js';

/** The three u32 lengths ahead of a split payload's head. */
export const SPLIT_LENGTHS_BYTES = 12;
/** Bytes of the uncompressed-size prefix lz4-napi's compressSync writes, dropped from a split head. */
const LZ4_SIZE_PREFIX_BYTES = 4;

/** A split payload's lengths, checked against each other and the stored bytes (splitLayout). */
export interface SplitLayout {
  /** Raw bytes of the head: where the first column body starts in the raw payload. */
  headRawBytes: number;
  /** Stored bytes of the head; equal to headRawBytes when stored verbatim. */
  headStoredBytes: number;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at] as number) | ((b[at + 1] as number) << 8) | ((b[at + 2] as number) << 16) | ((b[at + 3] as number) << 24)) >>> 0;
}

function putU32(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = v >>> 24;
}

/**
 * The stored form of a layout-2 payload: its head (payloadBodiesStart) LZ4-compressed when
 * that is at least `minBytes` long and saves at least 1/2^savingShift of it, else verbatim;
 * its bodies verbatim. Throws TPD_CORRUPT_BLOCK for a payload whose head does not parse
 * (layout 1 among them).
 */
export function encodeSplitPayload(raw: Uint8Array, minBytes: number, savingShift: number): Uint8Array {
  const h = payloadBodiesStart(raw);
  let head = raw.subarray(0, h);
  if (h >= minBytes) {
    const c = compressSync(Buffer.from(raw.buffer, raw.byteOffset, h));
    const block = c.subarray(LZ4_SIZE_PREFIX_BYTES);
    // Strictly shorter, always: a head as long as H reads as verbatim.
    if (block.length <= h - (h >> savingShift) && block.length < h) head = block;
  }
  const out = new Uint8Array(SPLIT_LENGTHS_BYTES + head.length + raw.length - h);
  putU32(out, 0, raw.length);
  putU32(out, 4, h);
  putU32(out, 8, head.length);
  out.set(head, SPLIT_LENGTHS_BYTES);
  out.set(raw.subarray(h), SPLIT_LENGTHS_BYTES + head.length);
  return out;
}

/**
 * Checks a split payload's three lengths against the stored bytes and the frame header's
 * raw length, before anything is sized from them; throws TPD_CORRUPT_BLOCK (`where: ...`).
 * The head's own bytes are checked when it is decoded (decodeSplitInto).
 */
export function splitLayout(stored: Uint8Array, rawBytes: number, where: string): SplitLayout {
  const fail = (what: string): never => {
    throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: split payload ${what}`);
  };
  if (stored.length < SPLIT_LENGTHS_BYTES) fail('shorter than its three lengths');
  const rawLength = u32(stored, 0);
  const headRawBytes = u32(stored, 4);
  const headStoredBytes = u32(stored, 8);
  const after = stored.length - SPLIT_LENGTHS_BYTES;
  if (rawLength !== rawBytes) fail(`declares ${rawLength} raw bytes, its frame header ${rawBytes}`);
  if (headRawBytes > rawLength) fail(`head of ${headRawBytes} bytes is longer than the payload (${rawLength})`);
  if (headStoredBytes > after) fail(`head of ${headStoredBytes} stored bytes runs past the payload (${after} after the lengths)`);
  if (after - headStoredBytes !== rawLength - headRawBytes) fail(`holds ${after - headStoredBytes} body bytes for ${rawLength - headRawBytes}`);
  if (headStoredBytes > headRawBytes) fail(`head of ${headStoredBytes} stored bytes is longer than its ${headRawBytes} raw bytes`);
  if (headStoredBytes < headRawBytes && !lz4CanExpandTo(headStoredBytes, headRawBytes)) {
    fail(`LZ4 head declares ${headRawBytes} bytes, more than ${headStoredBytes} stored bytes can hold`);
  }
  return { headRawBytes, headStoredBytes };
}

/**
 * The raw payload of a split payload whose lengths splitLayout checked, into out[0,
 * rawBytes) (out at least that long): the head decoded (exactly H bytes) or copied, the
 * bodies copied. Then the head must parse and end at H (payloadBodiesStart): a head that
 * is not one, or whose H does not fall where its bodies start, is refused, so that a body's
 * place computed from H is where the decoders read it. Throws TPD_CORRUPT_BLOCK.
 */
export function decodeSplitInto(stored: Uint8Array, layout: SplitLayout, out: Uint8Array, rawBytes: number, where: string): Uint8Array {
  const { headRawBytes: h, headStoredBytes: sh } = layout;
  const bodiesAt = SPLIT_LENGTHS_BYTES + sh;
  if (sh < h) lz4DecodeInto(stored, SPLIT_LENGTHS_BYTES, bodiesAt, out, h, `${where}: split head`);
  else out.set(stored.subarray(SPLIT_LENGTHS_BYTES, bodiesAt), 0);
  out.set(stored.subarray(bodiesAt), h);
  const raw = out.length === rawBytes ? out : out.subarray(0, rawBytes);
  checkHeadEnd(raw, h, where);
  return raw;
}

/**
 * The raw payload of a split payload with a verbatim head, checked as decodeSplitInto
 * checks it: a view of `stored` (no copy; the stored bytes after the lengths are the raw
 * payload). Undefined when the head is compressed.
 */
export function splitVerbatimView(stored: Uint8Array, layout: SplitLayout, where: string): Uint8Array | undefined {
  if (layout.headStoredBytes !== layout.headRawBytes) return undefined;
  const raw = stored.subarray(SPLIT_LENGTHS_BYTES);
  checkHeadEnd(raw, layout.headRawBytes, where);
  return raw;
}

function checkHeadEnd(raw: Uint8Array, h: number, where: string): void {
  let start: number;
  try {
    start = payloadBodiesStart(raw);
  } catch (err) {
    throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: split head: ${(err as Error).message}`, undefined, { cause: err });
  }
  if (start !== h) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: split head declares ${h} bytes, its bodies start at ${start}`);
}

/**
 * Where raw payload byte H (the first column body's first byte) sits within a split
 * frame's stored payload: raw byte x >= H is at stored offset splitBodiesOffset + x - H,
 * i.e. at file offset frameOffset + 48 + splitBodiesOffset(stored) + (x - H). Reads the
 * head's stored length only: for a frame openFrame has opened (or whose lengths
 * splitLayout checked).
 */
export function splitBodiesOffset(stored: Uint8Array): number {
  if (stored.length < SPLIT_LENGTHS_BYTES) throw new TapedeckError('TPD_CORRUPT_BLOCK', 'split payload shorter than its three lengths');
  return SPLIT_LENGTHS_BYTES + u32(stored, 8);
}

/** A split payload's head raw length H (stored bytes 4..8), for a frame checked as splitBodiesOffset requires. */
export function splitHeadRawBytes(stored: Uint8Array): number {
  if (stored.length < SPLIT_LENGTHS_BYTES) throw new TapedeckError('TPD_CORRUPT_BLOCK', 'split payload shorter than its three lengths');
  return u32(stored, 4);
}
