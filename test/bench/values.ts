/**
 * Cost of the exact msgpack value codec on the archive's read path, against msgpackr (what
 * msgpack columns used before): decode and encode of typical non-number columns. Prints one
 * JSON object. Run: node --import tsx test/bench/values.ts
 */
import { Packr, Unpackr } from 'msgpackr';
import { MsgpackReader, MsgpackWriter } from '../../protocol/value-msgpack.js';
import type { Value } from '../../protocol/value.js';

const COLUMN_VALUES = 100_000;
const ROUNDS = 20;

function column(kind: string): Value[] {
  return Array.from({ length: COLUMN_VALUES }, (_, i): Value => {
    if (kind === 'strings') return ['up', 'down', 'admin-down', `if-${i % 48}`][i % 4] as string;
    if (kind === 'objects') return { state: i % 3 === 0 ? 'up' : 'down', speed: 10_000 + (i % 7), errors: [i % 5, 0.5], ok: true };
    return i % 2 === 0;
  });
}

function timeMs(f: () => void): number {
  f(); // warm up
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) f();
  return Number(process.hrtime.bigint() - t0) / 1e6 / ROUNDS;
}

const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' });
const out: Record<string, unknown> = { columnValues: COLUMN_VALUES };
for (const kind of ['booleans', 'strings', 'objects']) {
  const vals = column(kind);
  const w = new MsgpackWriter();
  const bytes = Buffer.concat(vals.map((v) => packr.pack(v)));
  out[kind] = {
    decodeMsgpackrMs: +timeMs(() => unpackr.unpackMultiple(bytes)).toFixed(2),
    decodeCodecMs: +timeMs(() => {
      const r = new MsgpackReader(bytes);
      for (let i = 0; i < COLUMN_VALUES; i++) r.value();
    }).toFixed(2),
    encodeMsgpackrMs: +timeMs(() => { for (const v of vals) packr.pack(v); }).toFixed(2),
    encodeCodecMs: +timeMs(() => { w.reset(); for (const v of vals) w.value(v); }).toFixed(2),
  };
}
console.log(JSON.stringify(out));
