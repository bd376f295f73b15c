/**
 * A batch payload's batch times, read without decoding the rest of it: the payload head
 * (layout mark and counts, codec/payload.ts readPayloadHead, which refuses counts the
 * payload cannot hold) and the delta-of-delta varints that follow it (docs/format.md,
 * "Batch payload"). Layout 1 and layout 2 payloads both put the times right after the head.
 *
 * For a reader that only needs to place itself in a block (Cursor seek by time): a block's
 * times cost a varint a batch, where a full decode costs every update. Pure: bytes in,
 * numbers out. Anything malformed throws TPD_CORRUPT_BLOCK (ByteReader.fail).
 */
import { ByteReader } from './bytes.js';
import { readPayloadHead } from './payload.js';

/**
 * How many of the payload's batches are at or before `t`: the index of the first batch
 * after t (batches are in time order within a block). `batches` is the count the block's
 * header gives; a payload that says otherwise is refused, as a full decode refuses it.
 * Stops reading at the first batch after t.
 */
export function batchesAtOrBefore(raw: Uint8Array, firstTs: number, batches: number, t: number): number {
  const r = new ByteReader(raw);
  const { nb } = readPayloadHead(r, raw);
  if (nb !== batches) r.fail('batch count differs from its header');
  let ts = firstTs;
  let delta = 0;
  for (let i = 0; i < nb; i++) {
    delta += r.svar();
    ts += delta;
    if (ts > t) return i;
  }
  return nb;
}

/** Every batch time of a payload (as the full decode gives them in DecodedBatches.ts). */
export function readBatchTimes(raw: Uint8Array, firstTs: number): Float64Array {
  const r = new ByteReader(raw);
  const { nb } = readPayloadHead(r, raw);
  const out = new Float64Array(nb);
  let ts = firstTs;
  let delta = 0;
  for (let i = 0; i < nb; i++) {
    delta += r.svar();
    ts += delta;
    out[i] = ts;
  }
  return out;
}
