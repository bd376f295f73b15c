/**
 * One column of a batch payload: the values of one path within a block (docs/format.md,
 * "Column"). The writer picks the smallest kind that is exact (numbers: number-columns.ts);
 * column-decode.ts reads every kind ever written.
 */
import type { Value } from '../../protocol/value.js';
import { MsgpackWriter } from '../../protocol/value-msgpack.js';
import type { ByteWriter } from './bytes.js';
import { encodeNumberColumnBody, encodeValueNumbers } from './number-columns.js';
import { ColumnKind } from './column-kinds.js';

export { ColumnKind } from './column-kinds.js';
export { decodeColumn, decodeColumnBody, decodeColumnBodyF64, decodeColumnF64, skipColumn, skipColumnBody } from './column-decode.js';
export { encodeNumberColumnBody, encodeNumberColumns } from './number-columns.js';

// Non-number columns hold values in the msgpack form of protocol/value-msgpack.ts, exact
// for every value (lone surrogates, `__proto__` keys, nested -0, bigints). Columns written
// by msgpackr before it decode the same way: standard msgpack, WTF-8 surrogates included.
const columnWriter = new MsgpackWriter();
/** Writes vals[order[from]], ..., vals[order[to - 1]] as one column of the smallest exact kind. */
export function encodeColumn(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): void {
  w.u8(0);
  const at = w.pos - 1;
  const kind = encodeColumnBody(w, vals, order, from, to);
  w.buf[at] = kind;
}

/**
 * encodeColumn without the kind byte: writes the body and returns the kind (layout 2 keeps
 * kinds apart from bodies). A Float64Array of values takes the typed path (no type checks,
 * nothing boxed).
 */
export function encodeColumnBody(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  if (vals instanceof Float64Array) return encodeNumberColumnBody(w, vals, order, from, to);
  const kind = encodeValueNumbers(w, vals, order, from, to);
  return kind >= 0 ? kind : writeMsgpack(w, vals, order, from, to);
}

function writeMsgpack(w: ByteWriter, vals: ArrayLike<Value>, order: Uint32Array, from: number, to: number): number {
  const lenAt = w.pos;
  w.ensure(5);
  w.pos += 5; // fixed 5-byte varint slot for the byte length, patched below
  const begin = w.pos;
  columnWriter.reset();
  for (let i = from; i < to; i++) columnWriter.value(vals[order[i] as number] as Value);
  w.bytes(columnWriter.written());
  let len = w.pos - begin;
  for (let j = 0; j < 5; j++) {
    w.buf[lenAt + j] = (len & 0x7f) | (j < 4 ? 0x80 : 0);
    len >>>= 7;
  }
  return ColumnKind.MSGPACK;
}
