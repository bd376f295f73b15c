/**
 * Where each column body of a layout-2 batch payload lies (docs/format.md, "Batch payload"):
 * a version-5 per-series sidecar (storage/series-index/chunk-refs.ts) points at a path's
 * bodies in a codec-3 frame (codec/frame-split.ts: bodies verbatim in the file) instead of
 * holding a copy of its values. Pure: the head is parsed as payload.ts parses it (counts,
 * times, column ids, batch lists, kinds), then each body is walked over by its extent
 * (column-decode.ts skipColumnBody), without decoding any value.
 */
import { ByteReader } from './bytes.js';
import { skipColumnBody } from './column-decode.js';
import { checkUpdateCount, readPayloadHead } from './payload-head.js';

/** One block-local column: its path id, kind byte, number of values and raw bytes [start, end). */
export interface ColumnBody {
  id: number;
  kind: number;
  count: number;
  start: number;
  end: number;
}

/**
 * The column bodies of a layout-2 payload, in the order they are stored. Throws
 * TPD_CORRUPT_BLOCK for a payload the decoders refuse for its head (counts, lists, path ids)
 * or whose bodies do not end exactly at its end; layout 1 is refused too (its kind bytes lie
 * between its bodies).
 */
export function columnBodies(raw: Uint8Array): ColumnBody[] {
  const r = new ByteReader(raw);
  const head = readPayloadHead(r, raw);
  if (!head.layout2) r.fail('layout 1 has no column bodies apart from their kinds');
  checkUpdateCount(r, raw, head);
  const { nb, nu, nc } = head;
  for (let i = 0; i < nb; i++) r.svar();
  const ids = new Uint32Array(nc);
  let g = 0;
  for (let c = 0; c < nc; c++) {
    g += r.svar();
    if (g < 0 || g > 0xffffffff) r.fail('path id out of range');
    ids[c] = g;
  }
  const counts = new Float64Array(nc);
  // The last listed path list's columns, repeated by "same as previous" batches.
  let last: number[] = [];
  let listed = 0;
  for (let i = 0; i < nb; i++) {
    const h = r.uvar();
    const n = Math.floor(h / 2);
    if (listed + n > nu) r.fail('batch lists exceed update count');
    if (h % 2 === 1) {
      if (n !== last.length) r.fail('"same as previous" batch with another count');
    } else {
      last = new Array<number>(n);
      let l = -1;
      for (let j = 0; j < n; j++) {
        l += r.svar();
        if (l < 0 || l >= nc) r.fail('column index out of range');
        last[j] = l;
      }
    }
    for (const l of last) counts[l] = (counts[l] as number) + 1;
    listed += n;
  }
  if (listed !== nu) r.fail('batch lists do not add up to the update count');
  const kinds = r.bytes(nc);
  const out: ColumnBody[] = new Array<ColumnBody>(nc);
  for (let c = 0; c < nc; c++) {
    const start = r.pos;
    const kind = kinds[c] as number;
    const count = counts[c] as number;
    skipColumnBody(kind, r, count);
    out[c] = { id: ids[c] as number, kind, count, start, end: r.pos };
  }
  if (r.pos !== r.end) r.fail('trailing bytes');
  return out;
}
