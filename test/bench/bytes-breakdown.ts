/**
 * Where a DELTA block's bytes go, for work on bytes per update (issue "Performance": fabric
 * ≤ 0.5, mixed ≤ 1.5 B/update). Reads every DELTA frame of the archive's segment files
 * (no catalog, no server) and prints one JSON object, in bytes per update:
 *
 * - `stored`: the frames as on disk (48-byte headers and LZ4 payloads);
 * - `raw` / `lz4`: each section of the layout-2 payload (docs/format.md, "DELTA and IMAGE")
 *   before compression, and LZ4-compressed alone: head, times, path ids, batch lists, kind
 *   bytes, and the column bodies by kind family;
 * - `columns`: how many columns a block holds and how many values a column (mean);
 * - two what-ifs, each an estimate of the bytes saved, not a format anyone writes:
 *   `groupShortDecimals`: the decimal columns of 1 or 2 values (DECIMAL_K) of a block
 *   stored together, at one exponent, first values bit-packed from their minimum and second
 *   values' differences zigzagged and bit-packed (2 width bytes and a base of 6 bytes a
 *   block); `packedWidthsAhead`: each PACKED column's width byte moved next to the kind
 *   bytes, where LZ4 removes the repeats (the saving is the width bytes less what the kinds
 *   and widths then compress to beyond the kinds alone).
 *
 *   node --import tsx test/bench/bytes-breakdown.ts --archive <dir>
 *
 * bench:peers' archives: `npm run bench:peers -- --sides tapedeck --keep --dir D`, then
 * `--archive D/fabric-tapedeck` and `--archive D/mixed-tapedeck`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { compressSync } from 'lz4-napi';
import { ByteReader } from '../../storage/codec/bytes.js';
import { skipColumnBody } from '../../storage/codec/column-decode.js';
import { ColumnKind, PACKED_END } from '../../storage/codec/column-kinds.js';
import { BlockType, decodeFrameHeader, FRAME_HEADER_BYTES, openFrame } from '../../storage/codec/frame.js';
import { decodeBatches, readPayloadHead } from '../../storage/codec/payload.js';
import { CURRENT_NAME, ROTATED_NAME } from '../../storage/segment-file.js';

const { values: args } = parseArgs({ options: { archive: { type: 'string' } } });
if (args.archive === undefined) throw new Error('--archive is required');

const FILE_HEADER_BYTES = 96;
const raw: Record<string, number> = {};
const lz4: Record<string, number> = {};
const add = (to: Record<string, number>, k: string, n: number): void => void (to[k] = (to[k] ?? 0) + n);
const lz4Bytes = (b: Uint8Array): number => (b.length === 0 ? 0 : compressSync(Buffer.from(b)).length);
let updates = 0;
let stored = 0;
let blocks = 0;
let columns = 0;
let groupSaved = 0;
let widthsSaved = 0;

function family(kind: number): string {
  if (kind >= ColumnKind.PACKED && kind < PACKED_END) return 'packed';
  if (kind >= ColumnKind.DECIMAL_K && kind < ColumnKind.DECIMAL_K + 10) return 'decimalK';
  return ({ [ColumnKind.MSGPACK]: 'msgpack', [ColumnKind.DECIMAL]: 'decimal', [ColumnKind.FLOAT64]: 'float64', [ColumnKind.XOR]: 'xor' } as Record<number, string>)[kind] ?? 'other';
}

const bitsFor = (x: number): number => (x <= 0 ? 0 : Math.ceil(Math.log2(x + 1)));
const zigzag = (d: number): number => (d >= 0 ? 2 * d : -2 * d - 1);

/** The smallest exponent k at which v is exact (decimal columns' rule), or 10. */
function exponentOf(v: number): number {
  for (let k = 0; k <= 9; k++) if (Math.round(v * 10 ** k) / 10 ** k === v) return k;
  return 10;
}

function block(payload: Uint8Array, firstTs: number): void {
  const r = new ByteReader(payload);
  const head = readPayloadHead(r, payload);
  if (!head.layout2) return;
  const sections: Array<[string, number, number]> = [['head', 0, r.pos]];
  let at = r.pos;
  for (let i = 0; i < head.nb; i++) r.svar();
  sections.push(['times', at, r.pos]);
  at = r.pos;
  for (let i = 0; i < head.nc; i++) r.svar();
  sections.push(['ids', at, r.pos]);
  at = r.pos;
  const counts = new Uint32Array(head.nc);
  let previous: number[] = [];
  for (let b = 0; b < head.nb; b++) {
    const h = r.uvar();
    let list = previous;
    if ((h & 1) === 0) {
      list = [];
      for (let i = 0, c = -1; i < h >> 1; i++) list.push((c += r.svar()));
    }
    for (const c of list) counts[c] = (counts[c] as number) + 1;
    previous = list;
  }
  sections.push(['lists', at, r.pos]);
  const kinds = payload.subarray(r.pos, r.pos + head.nc);
  sections.push(['kinds', r.pos, r.pos + head.nc]);
  r.pos += head.nc;
  for (const [name, from, to] of sections) {
    add(raw, name, to - from);
    add(lz4, name, lz4Bytes(payload.subarray(from, to)));
  }
  // Bodies by kind family; the PACKED width bytes; the short decimal columns' values.
  const bodies: Record<string, number[]> = {};
  const widths: number[] = [];
  const shortCols: number[] = [];
  let shortBytes = 0;
  for (let c = 0; c < head.nc; c++) {
    const kind = kinds[c] as number;
    const from = r.pos;
    skipColumnBody(kind, r, counts[c] as number);
    (bodies[family(kind)] ??= []).push(from, r.pos);
    if (family(kind) === 'packed') {
      const order = (kind - ColumnKind.PACKED) >> 4;
      const wr = new ByteReader(payload, from, r.pos);
      for (let i = 0; i < Math.min(order, 2); i++) wr.svar();
      widths.push(wr.u8());
    }
    if (family(kind) === 'decimalK' && (counts[c] as number) <= 2) {
      shortCols.push(c);
      shortBytes += r.pos - from;
    }
  }
  for (const [name, spans] of Object.entries(bodies)) {
    let n = 0;
    const parts: Uint8Array[] = [];
    for (let i = 0; i < spans.length; i += 2) {
      n += (spans[i + 1] as number) - (spans[i] as number);
      parts.push(payload.subarray(spans[i] as number, spans[i + 1] as number));
    }
    add(raw, `body.${name}`, n);
    add(lz4, `body.${name}`, lz4Bytes(Buffer.concat(parts)));
  }
  if (widths.length > 0) {
    const alone = lz4Bytes(kinds);
    const together = lz4Bytes(Buffer.concat([kinds, Uint8Array.from(widths)]));
    widthsSaved += widths.length - (together - alone);
  }
  if (shortCols.length > 0) groupSaved += shortBytes - groupedBytes(payload, firstTs, shortCols);
  columns += head.nc;
}

/** The what-if group's bytes for the block's short decimal columns (column numbers `cols`). */
function groupedBytes(payload: Uint8Array, firstTs: number, cols: readonly number[]): number {
  const d = decodeBatches(payload, firstTs);
  const byPath = new Map<number, number[]>();
  for (let i = 0; i < d.ids.length; i++) {
    const id = d.ids[i] as number;
    let vs = byPath.get(id);
    if (vs === undefined) byPath.set(id, (vs = []));
    vs.push(d.values[i] as number);
  }
  const all = [...byPath.values()];
  const group = cols.map((c) => all[c] as number[]);
  let k = 0;
  for (const vs of group) for (const v of vs) k = Math.max(k, exponentOf(v));
  const scale = 10 ** k;
  let lo = Infinity;
  let hi = -Infinity;
  let zmax = 0;
  let seconds = 0;
  for (const vs of group) {
    const s0 = Math.round((vs[0] as number) * scale);
    lo = Math.min(lo, s0);
    hi = Math.max(hi, s0);
    if (vs.length === 2) {
      zmax = Math.max(zmax, zigzag(Math.round((vs[1] as number) * scale) - s0));
      seconds++;
    }
  }
  return 8 + Math.ceil((group.length * bitsFor(hi - lo) + seconds * bitsFor(zmax)) / 8);
}

const files = readdirSync(args.archive).filter((f) => f === CURRENT_NAME || ROTATED_NAME.test(f)).sort();
for (const f of files) {
  const buf = readFileSync(join(args.archive, f));
  let pos = FILE_HEADER_BYTES;
  while (pos + FRAME_HEADER_BYTES <= buf.length) {
    const h = decodeFrameHeader(buf.subarray(pos, pos + FRAME_HEADER_BYTES));
    if (typeof h === 'string') break; // the committed end, or a torn tail
    const frame = buf.subarray(pos, pos + FRAME_HEADER_BYTES + h.storedBytes);
    pos += frame.length;
    if (h.type !== BlockType.DELTA) continue;
    const { header, raw: payload } = openFrame(frame, `${f}@${pos - frame.length}`);
    stored += frame.length;
    updates += header.updates;
    blocks++;
    block(payload, header.firstTs);
  }
}

const perUpdate = (o: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number((v / updates).toFixed(4))]));
const storedPerUpdate = stored / updates;
console.log(
  JSON.stringify({
    archive: args.archive,
    files: files.length,
    blocks,
    updates,
    stored: Number(storedPerUpdate.toFixed(4)),
    raw: perUpdate(raw),
    lz4: perUpdate(lz4),
    columns: { perBlock: Math.round(columns / blocks), valuesPerColumn: Number((updates / columns).toFixed(2)) },
    whatIf: {
      groupShortDecimals: { saved: Number((groupSaved / updates).toFixed(4)), stored: Number(((stored - groupSaved) / updates).toFixed(4)) },
      packedWidthsAhead: { saved: Number((widthsSaved / updates).toFixed(4)), stored: Number(((stored - widthsSaved) / updates).toFixed(4)) },
    },
  }),
);
