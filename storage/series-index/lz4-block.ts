/**
 * The sidecar's LZ4 chunks are decoded by the codec's block decoder (storage/codec/lz4-block.ts),
 * in JS because sidecar chunks are small (about a hundred bytes): a native call and a Buffer
 * per chunk cost more than decoding it here. Its errors name the sidecar.
 */
import { lz4DecodeInto } from '../codec/lz4-block.js';

/** Decodes src[from, to) into dst[0, rawBytes) exactly; throws TPD_CORRUPT_BLOCK on anything else. */
export function lz4DecodeBlock(src: Uint8Array, from: number, to: number, dst: Uint8Array, rawBytes: number): void {
  lz4DecodeInto(src, from, to, dst, rawBytes, 'series sidecar');
}
