/**
 * A decoder of one LZ4 block (the standard block format, as lz4-napi's compressSync writes
 * it after its 4-byte size prefix) into a buffer the caller sized from a length it has
 * already bounded: a hostile stream can neither write past it nor make it grow, and every
 * token, length and match offset is checked. In JS because sidecar chunks are small (about
 * a hundred bytes): a native call and a Buffer per chunk cost more than decoding it here.
 */
import { TapedeckError } from '../../protocol/errors.js';

const MIN_MATCH = 4;

function fail(what: string): never {
  throw new TapedeckError('TPD_CORRUPT_BLOCK', `series sidecar: LZ4 block ${what}`);
}

/** Decodes src[from, to) into dst[0, rawBytes) exactly; throws TPD_CORRUPT_BLOCK on anything else. */
export function lz4DecodeBlock(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number): void {
  if (rawBytes > dst.length || to > src.length) fail('larger than its buffer');
  let s = from;
  let d = 0;
  for (;;) {
    if (s >= to) fail('truncated');
    const token = src[s++] as number;
    let literals = token >>> 4;
    if (literals === 15) {
      let b: number;
      do {
        if (s >= to) fail('truncated literal length');
        b = src[s++] as number;
        literals += b;
      } while (b === 255);
    }
    if (s + literals > to || d + literals > rawBytes) fail('literals past the end');
    for (const end = s + literals; s < end; ) dst[d++] = src[s++] as number;
    // The last sequence is literals only.
    if (s === to) break;
    if (s + 2 > to) fail('truncated match offset');
    const offset = (src[s] as number) | ((src[s + 1] as number) << 8);
    s += 2;
    if (offset === 0 || offset > d) fail('match offset out of range');
    let length = (token & 15) + MIN_MATCH;
    if ((token & 15) === 15) {
      let b: number;
      do {
        if (s >= to) fail('truncated match length');
        b = src[s++] as number;
        length += b;
      } while (b === 255);
    }
    if (d + length > rawBytes) fail('match past the end');
    // Byte by byte: a match may overlap the bytes it produces (a run).
    for (let m = d - offset, end = d + length; d < end; ) dst[d++] = dst[m++] as number;
  }
  if (d !== rawBytes) fail('shorter than its declared length');
}
