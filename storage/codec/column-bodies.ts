/**
 * Where each column body of a layout-2 batch payload lies (docs/format.md, "Batch payload"):
 * a version-5 per-series sidecar (storage/series-index/chunk-refs.ts) points at a path's
 * bodies in a codec-3 frame (codec/frame-split.ts: bodies verbatim in the file) instead of
 * holding a copy of its values. Pure: the head is read by the decoders' own readLayout
 * (payload.ts: counts, times, column ids, batch lists, kinds), then each body is walked over by its extent
 * (column-decode.ts skipColumnBody), without decoding any value.
 */
import { skipColumnBody } from './column-decode.js';
import { readLayout } from './payload.js';

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
  // Times are not needed: any first time reads the head alike.
  const { r, colGlobal, colCount, kinds } = readLayout(raw, 0);
  if (kinds === undefined) return r.fail('layout 1 has no column bodies apart from their kinds');
  const out: ColumnBody[] = new Array<ColumnBody>(kinds.length);
  for (let c = 0; c < kinds.length; c++) {
    const start = r.pos;
    const kind = kinds[c] as number;
    const count = colCount[c] as number;
    skipColumnBody(kind, r, count);
    out[c] = { id: colGlobal[c] as number, kind, count, start, end: r.pos };
  }
  if (r.pos !== r.end) r.fail('trailing bytes');
  return out;
}
