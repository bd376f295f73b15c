/**
 * History as Parquet: one row per update, the columns of docs/values.md ("Parquet"):
 *
 *   ts     INT64 TIMESTAMP(MICROS, UTC)   the batch's time
 *   path   UTF8, dictionary-encoded
 *   kind   UTF8, dictionary-encoded: which column holds the value
 *          (null | bool | number | bigint | string | bytes | json)
 *   bool   BOOLEAN   num  DOUBLE   int  INT64   str  UTF8   bytes  BYTE_ARRAY   json  UTF8
 *          (all nullable; exactly the one `kind` names is set, none for `null`)
 *
 * Every value comes back exactly: numbers by their bits (NaN, ±Infinity, -0), bigints that
 * fit INT64 in `int`, well-formed strings in `str`. What has no typed column goes to `json`
 * as its JSON form (protocol/value-json.ts): arrays, objects, bigints beyond INT64, and
 * strings with a lone surrogate, which UTF-8 (and so a Parquet UTF8 column) cannot carry
 * but the JSON form's `\ud800` escape can.
 *
 * Streaming: rows gather in column arrays until a row group is full
 * (SERVER_LIMITS.parquetRowGroupRowsMax rows or parquetRowGroupValueBytesTarget bytes of
 * values), which is then encoded, yielded as bytes and forgotten; the footer comes last.
 * So memory holds one row group and the footer's few bytes per row group, never the whole
 * export: the columns of variable length (path, str, bytes, json) carry no min/max
 * statistics, which the writer would keep whole, for the footer, for every row group (two
 * 1 MB strings a group held 2 MB a group until the export ended).
 *
 * An encode is synchronous (tens of ms for a full group): the encodes of every export in
 * the process take turns, one per turn of the event loop (encodeInTurn), so twenty exports
 * at once do not hold other requests back for seconds.
 */
import { setImmediate } from 'node:timers/promises';
import { ByteWriter, ParquetWriter, type ColumnSource } from 'hyparquet-writer';
import type { Batch, Value } from '../protocol/value.js';
import { isWellFormed } from '../protocol/value.js';
import { valueToJsonText } from '../protocol/value-json.js';
import { SERVER_LIMITS } from './limits.js';

/** A column of the file's schema (the type comes from hyparquet, the writer's own dependency). */
type SchemaElement = ConstructorParameters<typeof ParquetWriter>[0]['schema'][number];

/** The kinds of the `kind` column: each names the column that holds the value. */
export type ParquetKind = 'null' | 'bool' | 'number' | 'bigint' | 'string' | 'bytes' | 'json';

/** The media type of a Parquet file (IANA, 2024). */
export const PARQUET_MEDIA_TYPE = 'application/vnd.apache.parquet';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

const utf8 = (name: string, repetition: 'REQUIRED' | 'OPTIONAL'): SchemaElement => ({
  name,
  type: 'BYTE_ARRAY',
  repetition_type: repetition,
  converted_type: 'UTF8',
  logical_type: { type: 'STRING' },
});

const SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: 9 },
  {
    name: 'ts',
    type: 'INT64',
    repetition_type: 'REQUIRED',
    converted_type: 'TIMESTAMP_MICROS',
    logical_type: { type: 'TIMESTAMP', isAdjustedToUTC: true, unit: 'MICROS' },
  },
  utf8('path', 'REQUIRED'),
  utf8('kind', 'REQUIRED'),
  { name: 'bool', type: 'BOOLEAN', repetition_type: 'OPTIONAL' },
  { name: 'num', type: 'DOUBLE', repetition_type: 'OPTIONAL' },
  { name: 'int', type: 'INT64', repetition_type: 'OPTIONAL' },
  utf8('str', 'OPTIONAL'),
  { name: 'bytes', type: 'BYTE_ARRAY', repetition_type: 'OPTIONAL' },
  utf8('json', 'OPTIONAL'),
];

/** Bytes a row costs beyond its value (ts, kind, null slots): keeps many small rows bounded too. */
const ROW_OVERHEAD_BYTES = 16;

/** One row group's rows, column by column. */
class RowGroup {
  readonly ts: number[] = [];
  readonly path: string[] = [];
  readonly kind: ParquetKind[] = [];
  readonly bool: (boolean | null)[] = [];
  readonly num: (number | null)[] = [];
  readonly int: (bigint | null)[] = [];
  readonly str: (string | null)[] = [];
  readonly bytes: (Uint8Array | null)[] = [];
  readonly json: (string | null)[] = [];
  /** Rough size of the values held, for the row group's byte bound. */
  valueBytes = 0;

  get rows(): number {
    return this.ts.length;
  }

  get full(): boolean {
    return this.rows >= SERVER_LIMITS.parquetRowGroupRowsMax || this.valueBytes >= SERVER_LIMITS.parquetRowGroupValueBytesTarget;
  }

  add(ts: number, path: string, v: Value): void {
    this.ts.push(ts);
    this.path.push(path);
    const kind = kindOf(v);
    this.kind.push(kind);
    this.bool.push(kind === 'bool' ? (v as boolean) : null);
    this.num.push(kind === 'number' ? (v as number) : null);
    this.int.push(kind === 'bigint' ? (v as bigint) : null);
    this.str.push(kind === 'string' ? (v as string) : null);
    this.bytes.push(kind === 'bytes' ? (v as Uint8Array) : null);
    const json = kind === 'json' ? valueToJsonText(v) : null;
    this.json.push(json);
    this.valueBytes += ROW_OVERHEAD_BYTES + path.length + valueSize(kind, v, json);
  }

  columns(): ColumnSource[] {
    // No statistics for columns of variable length: the writer keeps every row group's
    // min and max values whole until the footer (see the top of this file).
    return [
      { name: 'ts', data: this.ts },
      // Paths repeat on every row: a dictionary keeps each once per row group.
      { name: 'path', data: this.path, encoding: 'RLE_DICTIONARY', statistics: false },
      { name: 'kind', data: this.kind, encoding: 'RLE_DICTIONARY' },
      { name: 'bool', data: this.bool },
      { name: 'num', data: this.num },
      { name: 'int', data: this.int },
      { name: 'str', data: this.str, statistics: false },
      { name: 'bytes', data: this.bytes, statistics: false },
      { name: 'json', data: this.json, statistics: false },
    ];
  }
}

/** Which column carries a value exactly; `json` for whatever no typed column can. */
export function kindOf(v: Value): ParquetKind {
  switch (typeof v) {
    case 'boolean':
      return 'bool';
    case 'number':
      return 'number';
    case 'bigint':
      return v >= INT64_MIN && v <= INT64_MAX ? 'bigint' : 'json';
    case 'string':
      return isWellFormed(v) ? 'string' : 'json';
    default:
      if (v === null) return 'null';
      return v instanceof Uint8Array ? 'bytes' : 'json';
  }
}

function valueSize(kind: ParquetKind, v: Value, json: string | null): number {
  if (kind === 'string') return (v as string).length;
  if (kind === 'bytes') return (v as Uint8Array).byteLength;
  return json === null ? 8 : json.length;
}

/** The last encode queued by any export of the process (encodeInTurn). */
let lastEncode: Promise<unknown> = Promise.resolve();

/**
 * Runs `encode` once the encodes queued before it have run, in a turn of the event loop of
 * its own: between two encodes the loop serves everything else that is ready.
 */
function encodeInTurn<T>(encode: () => T): Promise<T> {
  const mine = lastEncode.then(() => setImmediate()).then(encode);
  lastEncode = mine.catch(() => undefined);
  return mine;
}

/** Encodes a row group and takes the bytes written so far out of the writer. */
function flushGroup(pw: ParquetWriter, bw: ByteWriter, group: RowGroup): Promise<Uint8Array> {
  return encodeInTurn(() => {
    void pw.write({ columnData: group.columns(), rowGroupSize: group.rows });
    return takeBytes(bw);
  });
}

/** The writer's pending bytes, copied out; its buffer is reused (offsets stay file-wide). */
function takeBytes(bw: ByteWriter): Uint8Array {
  const out = bw.getBytes().slice();
  bw.index = 0;
  return out;
}

/**
 * Yields a Parquet file of the batches' updates as byte chunks, one per row group (the
 * first also holds the magic, the last the footer). Reads the next batch only when the
 * consumer asks for more, so a slow reader holds the reading back.
 */
export async function* parquetChunks(batches: AsyncIterable<Batch>, kvMetadata?: Array<{ key: string; value: string }>): AsyncGenerator<Uint8Array> {
  const bw = new ByteWriter();
  // The writer is synchronous (no flush hook): each write() has encoded the group on return.
  const pw = new ParquetWriter({ writer: bw, schema: SCHEMA, createdBy: 'tapedeck', ...(kvMetadata ? { kvMetadata } : {}) });
  let group = new RowGroup();
  // Every update is a row, in order, as recorded: a path listed twice in a batch (older
  // writers) gives two rows, the last its value there, as replay applies them.
  for await (const b of batches) {
    for (const [path, v] of b.updates) {
      group.add(b.ts, path, v);
      if (!group.full) continue;
      yield await flushGroup(pw, bw, group);
      group = new RowGroup();
    }
  }
  if (group.rows > 0) yield await flushGroup(pw, bw, group);
  // The footer lists every row group: its encode takes a turn too.
  yield await encodeInTurn(() => {
    void pw.finish();
    return takeBytes(bw);
  });
}
