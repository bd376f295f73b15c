/** CRC32C (Castagnoli), hardware-accelerated through @node-rs/crc32. Pure function. */
import { crc32c as native } from '@node-rs/crc32';

/** A string is hashed as its UTF-8 bytes. */
export function crc32c(data: Uint8Array | string, seed = 0): number {
  return native(data, seed) >>> 0;
}
