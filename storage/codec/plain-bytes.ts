/**
 * Bytes as a Uint8Array itself, never a subclass (a Buffer). Two reasons, both on the read
 * path (codec/frame.ts openFrame, codec/lz4-block.ts):
 *
 * - Decoders take bytes values out of a payload with slice, which copies from a Uint8Array
 *   but is a view of a Buffer: a value read as a view would keep its frame's whole read
 *   buffer alive, and would change under a reader that reuses that buffer (PayloadBuffer,
 *   a cursor's read-ahead).
 * - A Buffer has another map than a Uint8Array: code that sees both (frames read into
 *   Buffers by readExactly, the reused buffers) has its element loads specialised for two
 *   receivers instead of one (not measured apart: within the noise of bench:peers' read).
 */
export function plainBytes(b: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(b) === Uint8Array.prototype ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
