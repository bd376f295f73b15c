/**
 * storage/codec/lz4-block.ts as it was at 7710056 (before the seek's prefix decode shared its
 * loop), kept for test/lz4-block.test.ts to check that the full decode gives the same bytes
 * and the same errors as then. Not used by the product.
 */
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
import { plainBytes } from '../../storage/codec/plain-bytes.js';

const MIN_MATCH = 4;
/**
 * Literals or matches at least this long are copied by set / copyWithin (a native call
 * costs about as much as this many bytes copied one by one; measured on mixed blocks).
 */
const COPY_CALL_MIN_BYTES = 32;

function fail(where: string, what: string): never {
  throw new TapedeckError('TPD_CORRUPT_BLOCK', `${where}: LZ4 block ${what}`);
}

/**
 * Decodes the LZ4 block src[from, to) into dst[0, rawBytes) exactly; throws
 * TPD_CORRUPT_BLOCK (its message starting with `where`) on anything else: output longer
 * or shorter than rawBytes, a match reaching before the output's start, a truncated
 * sequence. Nothing is written at or past dst[rawBytes], whatever src holds.
 */
export function lz4DecodeIntoBefore(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number, where: string): void {
  if (rawBytes > dst.length || to > src.length || from < 0 || from > to) fail(where, 'larger than its buffer');
  // One receiver type for the loops below (plain-bytes.ts): the writes land in dst's memory.
  decodeSequences(plainBytes(src), from, to, plainBytes(dst), rawBytes, where);
}

function decodeSequences(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number, where: string): void {
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
    if (literals < COPY_CALL_MIN_BYTES) {
      for (const end = s + literals; s < end; ) dst[d++] = src[s++] as number;
    } else {
      dst.set(src.subarray(s, s + literals), d);
      s += literals;
      d += literals;
    }
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
    d = copyMatch(dst, d, offset, length);
  }
  if (d !== rawBytes) fail(where, 'shorter than its declared length');
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
