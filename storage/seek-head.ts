/**
 * The head of a delta block's payload for a seek by time (storage/cursor-seek.ts): its frame
 * checked as Archive.readPayload checks it (length, header, CRC32C of the whole stored
 * payload, the header against the catalog row), but of an LZ4 payload only the bytes the
 * head and the batch times can take decompressed (codec/lz4-block.ts lz4DecodePrefixInto);
 * of a split payload (codec 3) the same prefix of its head, which holds the batch times.
 *
 * Why: a seek needs those alone (codec/batch-times.ts), 72 bytes of a fabric block's 10 KB
 * and 174 of a mixed block's 65 KB at 16 384 updates, and decompressing the whole payload
 * into a buffer of its own was most of the seek's own CPU after the read (a mixed block: 60
 * of about 65 µs). The CRC still covers every stored byte, so damage anywhere in a block
 * fails the seek as before; what is no longer seen at the seek is an LZ4 stream that is
 * malformed past the prefix under a CRC32C that matches (a block written so on purpose):
 * the state or the read that decompresses the block in full refuses it.
 *
 * Any check that fails here hands the frame back (undefined): the caller then opens it
 * through the archive (Archive.payloadOf), which throws the error every reader gets.
 */
import type { BlockRow } from './catalog.js';
import { crc32c } from './codec/crc.js';
import { Codec, decodeFrameHeader, FRAME_HEADER_BYTES } from './codec/frame.js';
import { splitLayout, SPLIT_LENGTHS_BYTES } from './codec/frame-split.js';
import { lz4CanExpandTo, lz4DecodePrefixInto } from './codec/lz4-block.js';
import { plainBytes } from './codec/plain-bytes.js';
import { STORAGE_LIMITS } from './limits.js';

/** codec/frame.ts's LZ4_SIZE_PREFIX_BYTES (not exported there): the uncompressed size before the LZ4 block. */
const LZ4_SIZE_PREFIX_BYTES = 4;
/**
 * A payload head is a layout mark, a layout byte and three varints (nb, nu, nc), each
 * varint at most VARINT_BYTES_MAX bytes (codec/bytes.ts ByteReader.uvar refuses longer).
 */
const PAYLOAD_HEAD_BYTES_MAX = 2 + 3 * 8;
const VARINT_BYTES_MAX = 8;

/**
 * Bytes of a payload that hold its head and the times of its `batches` batches, whatever
 * their values: a reader of the head and times (batchesAtOrBefore) reads no further.
 */
export function headAndTimesBytesMax(batches: number): number {
  return PAYLOAD_HEAD_BYTES_MAX + VARINT_BYTES_MAX * batches;
}

/**
 * Decompressed seek heads go here, one seek after another: the payload is read (batch times)
 * before the seek awaits anything, and nothing keeps a view of it. Grown up to
 * STORAGE_LIMITS.payloadBufferBytesMax; a larger payload gets a buffer of its own.
 */
let scratch = new Uint8Array(0);

function scratchOf(n: number): Uint8Array {
  if (n > STORAGE_LIMITS.payloadBufferBytesMax) return new Uint8Array(n);
  if (scratch.length < n) scratch = new Uint8Array(Math.min(STORAGE_LIMITS.payloadBufferBytesMax, Math.max(n, scratch.length * 2)));
  return scratch;
}

/**
 * The frame's payload, `row.rawBytes` long, of which only the first headAndTimesBytesMax(
 * row.batches) bytes are meant to be read (the rest may hold an earlier seek's bytes), or
 * undefined when any check fails (see the file's comment). Valid until the next call.
 */
export function seekHead(bytes: Uint8Array, row: BlockRow): Uint8Array | undefined {
  // As openFrame: frames come in Buffers (readExactly); payloads are plain Uint8Arrays.
  const frame = plainBytes(bytes);
  if (frame.length !== row.frameBytes) return undefined;
  const header = decodeFrameHeader(frame);
  if (typeof header === 'string' || header.frameBytes !== row.frameBytes) return undefined;
  if (header.type !== row.type || header.firstTs !== row.firstTs || header.lastTs !== row.lastTs || header.batches !== row.batches) return undefined;
  const stored = frame.subarray(FRAME_HEADER_BYTES, header.frameBytes);
  if (crc32c(stored, crc32c(frame.subarray(0, 40))) !== header.crc) return undefined;
  if (header.codec === Codec.NONE) return stored;
  if (header.codec === Codec.SPLIT) return splitSeekHead(stored, header.rawBytes, row.batches);
  if (header.codec !== Codec.LZ4 || stored.length < LZ4_SIZE_PREFIX_BYTES) return undefined;
  const rawBytes = header.rawBytes;
  const declared = ((stored[0] as number) | ((stored[1] as number) << 8) | ((stored[2] as number) << 16) | ((stored[3] as number) << 24)) >>> 0;
  if (declared !== rawBytes || !lz4CanExpandTo(stored.length - LZ4_SIZE_PREFIX_BYTES, rawBytes)) return undefined;
  const out = scratchOf(rawBytes);
  try {
    lz4DecodePrefixInto(stored, LZ4_SIZE_PREFIX_BYTES, stored.length, out, rawBytes, Math.min(rawBytes, headAndTimesBytesMax(row.batches)), 'seek');
  } catch {
    return undefined;
  }
  return out.length === rawBytes ? out : out.subarray(0, rawBytes);
}

/**
 * seekHead of a split payload: its lengths checked (codec/frame-split.ts splitLayout), then
 * the prefix of its head that holds the head and times, decompressed or (verbatim) a view.
 * The head's end is not checked against its bodies here: the full open does that.
 */
function splitSeekHead(stored: Uint8Array, rawBytes: number, batches: number): Uint8Array | undefined {
  let h: number;
  let sh: number;
  try {
    ({ headRawBytes: h, headStoredBytes: sh } = splitLayout(stored, rawBytes, 'seek'));
  } catch {
    return undefined;
  }
  if (sh === h) return stored.subarray(SPLIT_LENGTHS_BYTES);
  const out = scratchOf(rawBytes);
  try {
    lz4DecodePrefixInto(stored, SPLIT_LENGTHS_BYTES, SPLIT_LENGTHS_BYTES + sh, out, h, Math.min(h, headAndTimesBytesMax(batches)), 'seek');
  } catch {
    return undefined;
  }
  return out.length === rawBytes ? out : out.subarray(0, rawBytes);
}
