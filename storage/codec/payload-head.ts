/**
 * A batch payload's head (docs/format.md, "Batch payload"): the layout mark and the counts
 * of batches, updates and columns. Every decoder reads it here: the codec's (payload.ts,
 * payload-into.ts) and the column reader (storage/column-block.ts).
 */
import { ByteReader } from './bytes.js';
import { PAYLOAD_LAYOUT, PAYLOAD_LAYOUT2_MARK } from './payload-encode.js';

/**
 * Most updates a payload may decode to when it holds fewer than a bit per update (only
 * "same as previous" batch lists reach that: a PACKED column of a linear series takes no
 * bits). The writer seals a block at STORAGE_LIMITS.blockUpdatesTarget updates, and a batch
 * holds at most batchUpdatesMax, so no block it ever wrote holds more than 16 383 + 1 000 000;
 * past this, 150 KB of repeated lists made readers allocate and decode 10^9 updates (GBs,
 * minutes). A format bound, not a tunable: test/codec-domain-damage.test.ts checks the
 * writer's limits stay under it.
 */
export const PAYLOAD_UNDER_A_BIT_UPDATES_MAX = 2 ** 21;

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
  // Every batch has a time varint and every column a path id varint: a byte each at least.
  // A PACKED column of a perfectly linear series takes zero bits per value, so updates are
  // not bounded by the payload's bits, nor by batches x columns (a path may be listed many
  // times in a batch: 17 times a batch over 100 batches of one constant path was refused
  // so, by every reader), but by batches x the longest list, itself listed a byte an entry
  // (checkUpdateCount counts them before a reader allocates for them).
  if (nc > nu || nb + nc > raw.length) r.fail('impossible counts');
  if (nu > raw.length * 8 + 8 && (nu > nb * raw.length || nu > PAYLOAD_UNDER_A_BIT_UPDATES_MAX)) r.fail('impossible counts');
  return { layout2, nb, nu, nc };
}

/**
 * Refuses a head (read by readPayloadHead, `r` just past it) whose update count its batch
 * lists do not add up to, when that count is past what its bytes can hold at a bit each:
 * readers allocate arrays of nu entries before they read the lists, and such a count (then
 * up to nb x nc) made a 15-byte payload cost 13 GB and 14 s before its refusal (and a
 * RangeError, not TPD_CORRUPT_BLOCK, past 2^32). Reads the times, the column table and
 * the lists' heads and entries (linear in the payload's bytes) without keeping them; the
 * decoders then read them again, as before, and refuse the same payloads.
 */
export function checkUpdateCount(r: ByteReader, raw: Uint8Array, head: PayloadHead): void {
  if (head.nu <= raw.length * 8 + 8) return;
  skipToKinds(new ByteReader(raw, r.pos), head);
}

/**
 * Reads past the times, the column table and the batch lists that follow a head (`s` just
 * past it), refusing lists that do not add up to the update count; `s` ends at the kind
 * bytes (layout 2) or the first column (layout 1).
 */
function skipToKinds(s: ByteReader, head: PayloadHead): void {
  const { nb, nu, nc } = head;
  skipVarints(s, nb + nc);
  let listed = 0;
  let prevCount = -1;
  for (let i = 0; i < nb; i++) {
    const h = s.uvar();
    const n = Math.floor(h / 2);
    if (h % 2 === 1) {
      if (n !== prevCount) s.fail('"same as previous" batch with another count');
    } else skipVarints(s, n);
    listed += n;
    prevCount = n;
  }
  if (listed !== nu) s.fail('batch lists do not add up to the update count');
}

/**
 * Reads past `n` varints, each at most 8 bytes as ByteReader.uvar reads them, without their
 * values: a byte's test each (a split frame's head check walks every list entry of a
 * block, 32 768 to 262 144 of them, on every open).
 */
function skipVarints(s: ByteReader, n: number): void {
  const buf = s.buf;
  const end = s.end;
  let p = s.pos;
  let run = 0;
  for (let left = n; left > 0; ) {
    if (p >= end) {
      s.pos = p;
      s.fail('truncated varint');
    }
    if ((buf[p++] as number) < 0x80) {
      left--;
      run = 0;
    } else if (++run === 8) {
      s.pos = p;
      s.fail('varint longer than 8 bytes');
    }
  }
  s.pos = p;
}

/**
 * Where a layout-2 payload's first column body starts: the length of everything before the
 * bodies (layout mark, counts, times, column table, batch lists, kind bytes), the head a
 * split frame (codec/frame-split.ts) stores apart from its bodies. Refuses layout 1 (its
 * kind bytes sit between the bodies) and any head the decoders refuse for its counts or
 * lists (TPD_CORRUPT_BLOCK); the bodies themselves are not read.
 */
export function payloadBodiesStart(raw: Uint8Array): number {
  const r = new ByteReader(raw);
  const head = readPayloadHead(r, raw);
  if (!head.layout2) r.fail('layout 1 has no head apart from its columns');
  skipToKinds(r, head);
  r.bytes(head.nc);
  return r.pos;
}
