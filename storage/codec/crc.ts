/**
 * CRC32C (Castagnoli). Pure function: @node-rs/crc32 (SSE 4.2, three streams), or the
 * native addon's (native/tapedeck-node: carry-less multiplication, about 15x faster on a
 * frame of tens of KB) once storage/native-codec-file.ts has probed that build and checked
 * its answers against this one's. Both give the same number for the same bytes, so which
 * one answers may change at any moment (a probe finishing) without a caller seeing it.
 */
import { crc32c as nodeRs } from '@node-rs/crc32';

/** A CRC32C of bytes continuing from `seed` (the CRC of the bytes before them; 0 to start). */
export type Crc32cOfBytes = (data: Uint8Array, seed: number) => number;

let ofBytes: Crc32cOfBytes | undefined;

/** A string is hashed as its UTF-8 bytes. */
export function crc32c(data: Uint8Array | string, seed = 0): number {
  if (ofBytes !== undefined && typeof data !== 'string') return ofBytes(data, seed) >>> 0;
  return nodeRs(data, seed) >>> 0;
}

/** @node-rs/crc32's answer whatever is installed (what a native build is checked against). */
export function crc32cReference(data: Uint8Array | string, seed = 0): number {
  return nodeRs(data, seed) >>> 0;
}

/** Answers crc32c of bytes with `fn` from now on (undefined: @node-rs/crc32 again). */
export function installCrc32c(fn: Crc32cOfBytes | undefined): void {
  ofBytes = fn;
}

/** Whether a CRC other than @node-rs/crc32's answers crc32c of bytes. */
export function crc32cInstalled(): boolean {
  return ofBytes !== undefined;
}
