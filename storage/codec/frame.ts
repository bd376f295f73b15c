/**
 * Block framing (48-byte frame header + payload). See docs/format.md.
 * Pure: bytes in, bytes out. Compression is LZ4 (lz4-napi block format with a 4-byte
 * little-endian uncompressed-size prefix) for DELTA and IMAGE payloads, raw DEFLATE for
 * PATHS payloads, each used only when it saves at least 1/16. Codec 3 (SPLIT,
 * codec/frame-split.ts) stores a DELTA or IMAGE payload's head apart from its column
 * bodies, kept verbatim; readers open it like any other, the writer does not write it yet.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { compressSync } from 'lz4-napi';
import { TapedeckError } from '../../protocol/errors.js';
import { crc32c } from './crc.js';
import { readI64, writeI64 } from './bytes.js';
import { lz4CanExpandTo, lz4DecodeInto } from './lz4-block.js';
import { decodeSplitInto, encodeSplitPayload, splitLayout, splitVerbatimView, SPLIT_LENGTHS_BYTES } from './frame-split.js';
import { plainBytes } from './plain-bytes.js';

export const FRAME_MAGIC = 0x4b4c4254; // "TBLK" read as little-endian u32
export const FRAME_HEADER_BYTES = 48;

export const BlockType = { PATHS: 1, DELTA: 2, IMAGE: 3 } as const;
export type BlockType = (typeof BlockType)[keyof typeof BlockType];
export const Codec = { NONE: 0, LZ4: 1, DEFLATE: 2, SPLIT: 3 } as const;

/** Hard bound on one block's payload (raw or stored); anything larger is corruption. */
export const BLOCK_PAYLOAD_BYTES_MAX = 64 * 1024 * 1024;
/** Payloads smaller than this are never compressed: the frame overhead would eat the gain. */
const COMPRESS_MIN_BYTES = 128;
/**
 * A payload is stored compressed when that saves at least 1/2^this of it. LZ4 decompresses
 * at gigabytes a second, microseconds a block beside the column decoding, so any real
 * saving pays (1/8 was required until 2026-12-03: fabric blocks of 32 k updates save 9 %).
 */
const COMPRESS_SAVING_SHIFT = 4;
/**
 * DEFLATE level for PATHS payloads: level 1 is faster than LZ4 here and 40 % smaller on
 * Prometheus label paths (62 KB against 107 KB for 10 000 paths); level 6 saves another
 * 20 % at 7 times the time, and PATHS frames of the whole dictionary start every file.
 */
const PATHS_DEFLATE_LEVEL = 1;

export interface FrameMeta {
  type: BlockType;
  firstTs: number;
  lastTs: number;
  batches: number;
  updates: number;
}

export interface FrameHeader extends FrameMeta {
  codec: number;
  storedBytes: number;
  rawBytes: number;
  crc: number;
  /** Bytes 44..48: zero as written, outside the CRC32C (verify checks them; readers ignore them). */
  padding: number;
  /** Header plus stored payload. */
  frameBytes: number;
}

export function encodeFrame(meta: FrameMeta, raw: Uint8Array, allowCompression = true): Uint8Array {
  if (raw.length > BLOCK_PAYLOAD_BYTES_MAX) {
    throw new TapedeckError('TPD_BATCH_TOO_LARGE', `block payload of ${raw.length} bytes exceeds ${BLOCK_PAYLOAD_BYTES_MAX}`);
  }
  let codec: number = Codec.NONE;
  let stored: Uint8Array = raw;
  if (allowCompression && raw.length >= COMPRESS_MIN_BYTES) {
    const paths = meta.type === BlockType.PATHS;
    const input = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const c = paths ? deflateRawSync(input, { level: PATHS_DEFLATE_LEVEL }) : compressSync(input);
    if (c.length <= raw.length - (raw.length >> COMPRESS_SAVING_SHIFT)) {
      codec = paths ? Codec.DEFLATE : Codec.LZ4;
      stored = c;
    }
  }
  return frameOf(meta, codec, stored, raw.length);
}

/**
 * A DELTA or IMAGE frame of codec 3 (SPLIT, codec/frame-split.ts): the layout-2 payload's
 * head stored apart (LZ4 when that saves a sixteenth), its column bodies verbatim. Throws
 * TPD_CORRUPT_BLOCK for a payload whose head does not parse (layout 1 among them),
 * TPD_BATCH_TOO_LARGE past BLOCK_PAYLOAD_BYTES_MAX.
 */
export function encodeSplitFrame(meta: FrameMeta, raw: Uint8Array): Uint8Array {
  if (meta.type === BlockType.PATHS) throw new TypeError('codec 3 (split) is for DELTA and IMAGE payloads, not PATHS');
  if (raw.length > BLOCK_PAYLOAD_BYTES_MAX) {
    throw new TapedeckError('TPD_BATCH_TOO_LARGE', `block payload of ${raw.length} bytes exceeds ${BLOCK_PAYLOAD_BYTES_MAX}`);
  }
  const stored = encodeSplitPayload(raw, COMPRESS_MIN_BYTES, COMPRESS_SAVING_SHIFT);
  if (stored.length > BLOCK_PAYLOAD_BYTES_MAX) {
    throw new TapedeckError('TPD_BATCH_TOO_LARGE', `split block payload of ${stored.length} bytes exceeds ${BLOCK_PAYLOAD_BYTES_MAX}`);
  }
  return frameOf(meta, Codec.SPLIT, stored, raw.length);
}

/** The 48-byte header (CRC32C over its first 40 bytes and the stored payload), then the payload. */
function frameOf(meta: FrameMeta, codec: number, stored: Uint8Array, rawLength: number): Uint8Array {
  const out = new Uint8Array(FRAME_HEADER_BYTES + stored.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, FRAME_MAGIC, true);
  out[4] = meta.type;
  out[5] = codec;
  view.setUint16(6, 0, true);
  view.setUint32(8, stored.length, true);
  view.setUint32(12, rawLength, true);
  writeI64(view, 16, meta.firstTs);
  writeI64(view, 24, meta.lastTs);
  view.setUint32(32, meta.batches, true);
  view.setUint32(36, meta.updates, true);
  out.set(stored, FRAME_HEADER_BYTES);
  const crc = crc32c(stored, crc32c(out.subarray(0, 40)));
  view.setUint32(40, crc, true);
  view.setUint32(44, 0, true);
  return out;
}

/**
 * Decodes and sanity-checks a frame header. Returns an error message instead of throwing
 * so scanners can report and resynchronise.
 */
export function decodeFrameHeader(buf: Uint8Array): FrameHeader | string {
  if (buf.length < FRAME_HEADER_BYTES) return 'truncated frame header';
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint32(0, true) !== FRAME_MAGIC) return 'bad frame magic';
  const type = buf[4] as number;
  const codec = buf[5] as number;
  if (type < BlockType.PATHS || type > BlockType.IMAGE) return `unknown block type ${type}`;
  if (codec !== Codec.NONE && codec !== Codec.LZ4 && codec !== Codec.DEFLATE && codec !== Codec.SPLIT) return `unknown codec ${codec}`;
  if (codec === Codec.SPLIT && type === BlockType.PATHS) return 'split codec on a PATHS block';
  const storedBytes = view.getUint32(8, true);
  const rawBytes = view.getUint32(12, true);
  if (storedBytes > BLOCK_PAYLOAD_BYTES_MAX || rawBytes > BLOCK_PAYLOAD_BYTES_MAX) return 'payload length out of range';
  if (codec === Codec.NONE && storedBytes !== rawBytes) return 'uncompressed block with mismatched lengths';
  if (codec === Codec.SPLIT && storedBytes < SPLIT_LENGTHS_BYTES) return 'split block shorter than its three lengths';
  const firstTs = readI64(view, 16);
  const lastTs = readI64(view, 24);
  if (lastTs < firstTs) return 'block time range is reversed';
  return {
    type: type as BlockType,
    codec,
    storedBytes,
    rawBytes,
    firstTs,
    lastTs,
    batches: view.getUint32(32, true),
    updates: view.getUint32(36, true),
    crc: view.getUint32(40, true),
    padding: view.getUint32(44, true),
    frameBytes: FRAME_HEADER_BYTES + storedBytes,
  };
}

/** Bytes of the uncompressed-size prefix lz4-napi's compressSync writes before the LZ4 block. */
const LZ4_SIZE_PREFIX_BYTES = 4;

/**
 * A buffer that openFrame decompresses LZ4 payloads into, reused from frame to frame: the
 * payload it returns is then a view of this buffer, valid until the next openFrame given
 * the same PayloadBuffer. For readers that decode a payload before anything else can run
 * (no await between openFrame and the end of the decode) and keep no view of it: their
 * decoded values are copies (numbers, strings, bytes sliced out). Payloads above
 * `maxBytes` get a buffer of their own (the reused one does not grow past it).
 */
export class PayloadBuffer {
  private buf = new Uint8Array(0);

  constructor(private readonly maxBytes: number) {}

  /** A buffer of at least n bytes: the reused one when n fits the bound, else a fresh one. */
  take(n: number): Uint8Array {
    if (n > this.maxBytes) return plainBytes(Buffer.allocUnsafe(n));
    if (this.buf.length < n) this.buf = new Uint8Array(Math.min(this.maxBytes, Math.max(n, this.buf.length * 2)));
    return this.buf;
  }
}

/**
 * Checks the CRC over header and stored payload, then decompresses. Throws TPD_CORRUPT_BLOCK.
 * With `into`, an LZ4 payload is decompressed into its reused buffer (see PayloadBuffer for
 * how long the returned payload then lives); without, into a buffer of its own.
 */
export function openFrame(bytes: Uint8Array, where: string, into?: PayloadBuffer): { header: FrameHeader; raw: Uint8Array } {
  // Frames come in Buffers (readExactly) and in Uint8Arrays: the CRC's loop sees one type.
  const frame = plainBytes(bytes);
  const header = decodeFrameHeader(frame);
  if (typeof header === 'string') throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: ${header}`);
  if (frame.length < header.frameBytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: frame truncated`);
  const stored = frame.subarray(FRAME_HEADER_BYTES, header.frameBytes);
  const crc = crc32c(stored, crc32c(frame.subarray(0, 40)));
  if (crc !== header.crc) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: CRC32C mismatch`);
  // Every payload is a plain Uint8Array (plain-bytes.ts): a view of the frame, or of a buffer allocated so.
  if (header.codec === Codec.NONE) return { header, raw: stored };
  if (header.codec === Codec.LZ4) return { header, raw: openLz4(stored, header.rawBytes, where, into) };
  if (header.codec === Codec.SPLIT) return { header, raw: openSplit(stored, header.rawBytes, where, into) };
  let raw: Uint8Array;
  try {
    // DEFLATE output is bounded by the declared length (a damaged stream cannot inflate past it).
    raw = inflateRawSync(stored, { maxOutputLength: Math.max(1, header.rawBytes) });
  } catch (err) {
    throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: DEFLATE payload does not decompress`, undefined, { cause: err });
  }
  if (raw.length !== header.rawBytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: decompressed length mismatch`);
  return { header, raw: plainBytes(raw) };
}

/**
 * An LZ4 payload (its size prefix, then one block) decompressed to exactly rawBytes (the
 * header's, bounded by BLOCK_PAYLOAD_BYTES_MAX): the prefix must say the same, and the
 * block must decode to that length (codec/lz4-block.ts checks every sequence).
 */
function openLz4(stored: Uint8Array, rawBytes: number, where: string, into: PayloadBuffer | undefined): Uint8Array {
  if (stored.length < LZ4_SIZE_PREFIX_BYTES) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: LZ4 payload truncated`);
  const declared = ((stored[0] as number) | ((stored[1] as number) << 8) | ((stored[2] as number) << 16) | ((stored[3] as number) << 24)) >>> 0;
  if (declared !== rawBytes) throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: decompressed length mismatch`);
  if (!lz4CanExpandTo(stored.length - LZ4_SIZE_PREFIX_BYTES, rawBytes)) {
    throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: LZ4 payload declares ${rawBytes} bytes, more than ${stored.length - LZ4_SIZE_PREFIX_BYTES} stored bytes can hold`);
  }
  const out = into === undefined ? plainBytes(Buffer.allocUnsafe(rawBytes)) : into.take(rawBytes);
  lz4DecodeInto(stored, LZ4_SIZE_PREFIX_BYTES, stored.length, out, rawBytes, where);
  return out.length === rawBytes ? out : out.subarray(0, rawBytes);
}

/**
 * A split payload (codec/frame-split.ts) as its raw payload: its lengths checked before a
 * buffer is sized (at most 255 times the stored head plus the bodies, as for codec 1), then
 * the head decoded into it and the bodies copied after; a verbatim head gives a view of
 * the frame, with no copy.
 */
function openSplit(stored: Uint8Array, rawBytes: number, where: string, into: PayloadBuffer | undefined): Uint8Array {
  const layout = splitLayout(stored, rawBytes, where);
  const view = splitVerbatimView(stored, layout, where);
  if (view !== undefined) return view;
  const out = into === undefined ? plainBytes(Buffer.allocUnsafe(rawBytes)) : into.take(rawBytes);
  return decodeSplitInto(stored, layout, out, rawBytes, where);
}
