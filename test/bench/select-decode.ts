/**
 * What reading one series out of a block costs, by step: the frame check (CRC32C, LZ4),
 * a full decode, a full decode then a filter (what storage/series-read.ts does while the
 * archive only decodes whole blocks), and the column-skipping decode (codec
 * decodeBatchesSelected). Blocks as a Prometheus-like archive holds them: SERIES series per
 * batch (counters and random-walk gauges), one batch per scrape, cut at the block targets.
 * Prints one JSON object, microseconds per block.
 *
 *   SERIES=10000 node --import tsx test/bench/select-decode.ts
 */
import { decodeBatches, decodeBatchesSelected, encodeBatches } from '../../storage/codec/payload.js';
import { BlockType, encodeFrame, openFrame } from '../../storage/codec/frame.js';
import { ByteWriter } from '../../storage/codec/bytes.js';
import { STORAGE_LIMITS } from '../../storage/limits.js';
import { filterDecoded } from '../../storage/series-read.js';
import type { Value } from '../../protocol/value.js';

const SERIES = Number(process.env.SERIES ?? 10000);
const ROUNDS = Number(process.env.ROUNDS ?? 200);

const batches = Math.max(1, Math.ceil(STORAGE_LIMITS.blockUpdatesTarget / SERIES));
const ts: number[] = [];
const counts: number[] = [];
const ids: number[] = [];
const values: Value[] = [];
let walk = 0;
for (let k = 0; k < batches; k++) {
  ts.push(1_700_000_000_000_000 + k * 15_000_000);
  counts.push(SERIES);
  for (let i = 0; i < SERIES; i++) {
    ids.push(i);
    walk += Math.sin(i * 7 + k) * 0.37;
    values.push(i % 2 === 0 ? k * ((i % 7) + 1) * 1.5 : 20 + walk);
  }
}
const raw = encodeBatches({ ts, counts, ids, values, batchCount: batches, updateCount: ids.length }, new ByteWriter(1 << 20)).slice();
const frame = encodeFrame({ type: BlockType.DELTA, firstTs: ts[0] as number, lastTs: ts.at(-1) as number, batches, updates: ids.length }, raw);
const keepOne = (id: number): boolean => id === 17;

function time(fn: () => unknown): number {
  for (let i = 0; i < 5; i++) fn();
  const t = performance.now();
  for (let i = 0; i < ROUNDS; i++) fn();
  return Math.round(((performance.now() - t) / ROUNDS) * 1000);
}

console.log(JSON.stringify({
  bench: 'select-decode',
  series: SERIES,
  batchesPerBlock: batches,
  payloadBytes: raw.length,
  frameBytes: frame.length,
  usPerBlock: {
    openFrame: time(() => openFrame(frame, 'bench')),
    decodeFull: time(() => decodeBatches(raw, ts[0] as number)),
    decodeFullThenFilter: time(() => filterDecoded(decodeBatches(raw, ts[0] as number), keepOne)),
    decodeSelected: time(() => decodeBatchesSelected(raw, ts[0] as number, keepOne)),
  },
}));
