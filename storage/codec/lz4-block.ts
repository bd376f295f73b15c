/**
 * A decoder of one LZ4 block (the standard block format, as lz4-napi's compressSync writes
 * it after its 4-byte size prefix) into a buffer the caller holds and sized from a length
 * it has already bounded: a hostile stream can neither write past that length nor make the
 * buffer grow, and every token, length and match offset is checked (TPD_CORRUPT_BLOCK).
 *
 * Why in JS: lz4-napi's uncompressSync returns a fresh Buffer per block, and on a
 * sequential read of mixed blocks (64 KB raw each) those buffers drove a mark-compact
 * about every pass, 10 % of the read's CPU (docs/format.md "Decompressing into a reused
 * buffer"). Decoding here into a buffer reused block after block allocates nothing. Short
 * literals and matches (most of them) are copied byte by byte; long ones by the typed
 * array's memmove (set, copyWithin), a run (a match overlapping its own output) by
 * doubling copies of its period.
 */
import { TapedeckError } from '../../protocol/errors.js';
import { plainBytes } from './plain-bytes.js';

const MIN_MATCH = 4;
/**
 * Literals or matches at least this long are copied by set / copyWithin (a native call
 * costs about as much as this many bytes copied one by one; measured on mixed blocks).
 */
const COPY_CALL_MIN_BYTES = 32;

/**
 * LZ4's largest expansion: a sequence's length bytes add at most 255 each, so a block of n
 * bytes decodes to less than 255 * n + LZ4_EXPANSION_SLACK_BYTES (the first token and offset
 * give at most 19 bytes for 3). A larger declared length is refused before any buffer is
 * sized from it: a frame whose CRC checks cannot make a reader allocate 64 MiB from 5 bytes.
 */
export const LZ4_EXPANSION_MAX = 255;
const LZ4_EXPANSION_SLACK_BYTES = 64;

/** Whether an LZ4 block of `blockBytes` can decode to `rawBytes` (see LZ4_EXPANSION_MAX). */
export function lz4CanExpandTo(blockBytes: number, rawBytes: number): boolean {
  return rawBytes <= blockBytes * LZ4_EXPANSION_MAX + LZ4_EXPANSION_SLACK_BYTES;
}

function fail(where: string, what: string): never {
  throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: LZ4 block ${what}`);
}

/**
 * Decodes the LZ4 block src[from, to) into dst[0, rawBytes) exactly; throws
 * TPD_CORRUPT_BLOCK (its message starting with `where`) on anything else: output longer
 * or shorter than rawBytes, a match reaching before the output's start, a truncated
 * sequence. Nothing is written at or past dst[rawBytes], whatever src holds.
 */
export function lz4DecodeInto(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number, where: string): void {
  if (rawBytes > dst.length || to > src.length || from < 0 || from > to) fail(where, 'larger than its buffer');
  // One receiver type for the loops below (plain-bytes.ts): the writes land in dst's memory.
  decodeSequences(plainBytes(src), from, to, plainBytes(dst), rawBytes, rawBytes, where);
}

/**
 * The one sequence loop, for whole blocks (end = rawBytes: exactly rawBytes, or a refusal)
 * and prefixes (end < rawBytes: stops once dst[0, end) is written, the sequence reaching it
 * checked in full but copied only up to it). One function for both, so the seek's prefixes
 * and the state's whole blocks run (and warm up, and get compiled) the same code.
 */
function decodeSequences(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number, end: number, where: string): void {
  const prefix = end < rawBytes;
  let s = from;
  let d = 0;
  for (;;) {
    if (s >= to) fail(where, 'truncated');
    const token = src[s++] as number;
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (s >= to) fail(where, 'truncated literal length');
        b = src[s++] as number;
        literals += b;
      } while (b === 255);
    }
    if (literals > to - s || literals > rawBytes - d) fail(where, 'literals past the end');
    // Past `end` only in a prefix (a whole block's literals end by rawBytes = end).
    const copied = literals > end - d ? end - d : literals;
    if (copied < COPY_CALL_MIN_BYTES) {
      for (const stop = s + copied; s < stop; ) dst[d++] = src[s++] as number;
    } else {
      dst.set(src.subarray(s, s + copied), d);
      s += copied;
      d += copied;
    }
    s += literals - copied;
    if (prefix && d === end) return;
    // The last sequence is literals only.
    if (s === to) break;
    if (s + 2 > to) fail(where, 'truncated match offset');
    const offset = (src[s] as number) | ((src[s + 1] as number) << 8);
    s += 2;
    if (offset === 0 || offset > d) fail(where, 'match offset out of range');
    let length = (token & 15) + MIN_MATCH;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= to) fail(where, 'truncated match length');
        b = src[s++] as number;
        length += b;
      } while (b === 255);
    }
    if (length > rawBytes - d) fail(where, 'match past the end');
    d = copyMatch(dst, d, offset, length > end - d ? end - d : length);
    if (prefix && d === end) return;
  }
  if (d !== rawBytes) fail(where, 'shorter than its declared length');
}

/**
 * Decodes the first `prefixBytes` bytes of what the LZ4 block src[from, to) decodes to (its
 * declared length rawBytes) into dst[0, prefixBytes), and stops: for a reader that needs
 * only a payload's head (a seek by time: the head and batch times, a few hundred bytes of a
 * block's 10–65 KB). LZ4 decodes front to back, so those bytes are the full decode's; every
 * sequence read is checked as lz4DecodeInto checks it, against rawBytes, so a stream the
 * full decode refuses before its first prefixBytes bytes fails here with the same error.
 * What follows the prefix is not read (a fault there is the full decode's to find). Nothing
 * is written at or past dst[prefixBytes]. prefixBytes >= rawBytes is the full decode.
 */
export function lz4DecodePrefixInto(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number, prefixBytes: number, where: string): void {
  if (prefixBytes >= rawBytes) {
    lz4DecodeInto(src, from, to, dst, rawBytes, where);
    return;
  }
  if (prefixBytes > dst.length || prefixBytes < 0 || to > src.length || from < 0 || from > to) fail(where, 'larger than its buffer');
  if (prefixBytes === 0) return;
  decodeSequences(plainBytes(src), from, to, plainBytes(dst), rawBytes, prefixBytes, where);
}

/** Copies a match of `length` bytes from `offset` back to dst[d]; returns the new end. */
function copyMatch(dst: Uint8Array, d: number, offset: number, length: number): number {
  const end = d + length;
  if (length < COPY_CALL_MIN_BYTES) {
    // Byte by byte: a match may overlap the bytes it produces (a run).
    for (let m = d - offset; d < end; ) dst[d++] = dst[m++] as number;
    return end;
  }
  const m = d - offset;
  if (offset >= length) {
    dst.copyWithin(d, m, m + length);
    return end;
  }
  // A run: dst[m, d) is its period; each copy of all written since m doubles what can be copied next.
  while (d < end) {
    const n = Math.min(d - m, end - d);
    dst.copyWithin(d, m, m + n);
    d += n;
  }
  return end;
}
