/**
 * A batch payload's head (docs/format.md, "Batch payload"): the layout mark and the counts
 * of batches, updates and columns. Every decoder reads it here: the codec's (payload.ts,
 * payload-into.ts) and the column reader (storage/column-block.ts).
 */
import type { ByteReader } from './bytes.js';
import { PAYLOAD_LAYOUT, PAYLOAD_LAYOUT2_MARK } from './payload-encode.js';

/** A payload's head: its layout and counts of batches, updates and columns. */
export interface PayloadHead {
  layout2: boolean;
  nb: number;
  nu: number;
  nc: number;
}

/**
 * Reads a payload's head from `r` (at the payload's start): the layout mark and the counts,
 * refusing counts the payload's size cannot hold.
 */
export function readPayloadHead(r: ByteReader, raw: Uint8Array): PayloadHead {
  // Layout 1's empty payload (0 batches, 0 updates) also starts with 0, then 0.
  const layout2 = raw.length >= 2 && raw[0] === PAYLOAD_LAYOUT2_MARK && raw[1] !== 0;
  if (layout2) {
    r.u8();
    if (r.u8() !== PAYLOAD_LAYOUT) r.fail(`unknown payload layout ${raw[1] as number}`);
  }
  const nb = r.uvar();
  const nu = r.uvar();
  const nc = r.uvar();
  // A PACKED column of a perfectly linear series takes zero bits per value, so updates are
  // bounded by batches x columns (a path is once per batch), not by the payload's bits.
  if (nc > nu || nb > raw.length || (nu > raw.length * 8 + 8 && nu > nb * nc)) r.fail('impossible counts');
  return { layout2, nb, nu, nc };
}
