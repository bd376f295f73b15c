/**
 * Codec 1 (the payload LZ4-compressed whole) against codec 3 (SPLIT: the head apart, LZ4
 * when that pays, the column bodies verbatim; storage/codec/frame-split.ts) on blocks of
 * 32 768, 131 072 and 262 144 updates: stored bytes (frame headers included) and the time
 * openFrame takes to give the raw payload back (into a reused PayloadBuffer, as the archive
 * reads), with the head check codec 3 adds (payloadBodiesStart) timed apart, and a whole
 * decode (decodeBatches) for scale.
 *
 * Load: bench:prom-write's (SERIES series, 20 node/SNMP metric names, counters that grow by
 * whole numbers with noise, gauges in hundredths, SCRAPES scrapes 15 s apart, cut into
 * requests of PER_REQUEST samples), one batch a request, the batches cut into blocks at
 * the first batch boundary at or past each size. Prints one JSON object.
 *
 *   npm run bench:split-frame        (SERIES=10000 SCRAPES=60 PER_REQUEST=2000 ROUNDS=20)
 */
import { ByteWriter } from '../../storage/codec/bytes.js';
import { BlockType, encodeFrame, encodeSplitFrame, FRAME_HEADER_BYTES, openFrame, PayloadBuffer } from '../../storage/codec/frame.js';
import { splitBodiesOffset, splitHeadRawBytes, SPLIT_LENGTHS_BYTES } from '../../storage/codec/frame-split.js';
import { decodeBatches, encodeBatches } from '../../storage/codec/payload.js';
import { payloadBodiesStart } from '../../storage/codec/payload-head.js';

const SERIES = Number(process.env.SERIES ?? 10_000);
const SCRAPES = Number(process.env.SCRAPES ?? 60);
const PER_REQUEST = Number(process.env.PER_REQUEST ?? 2000);
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const BLOCK_UPDATES = [32_768, 131_072, 262_144];
const METRIC_NAMES = 20;
/** Which of the METRIC_NAMES are counters (bench:prom-write's `_total` and `Octets` names). */
const COUNTERS = new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13]);

/** bench:prom-write's valueOf: sample k of series i. */
function valueOf(i: number, k: number): number {
  let x = (i * 2654435761 + k * 40503) >>> 0;
  x ^= x >>> 13;
  if (COUNTERS.has(i % METRIC_NAMES)) return i * 1_000_003 + k * ((i % 97) + 1) * 15_000 + (x % 1000);
  return Math.round((i % 500) * 10 + (x % 10_000) / 100) / 100;
}

interface Batch {
  ts: number;
  from: number;
  to: number;
}

const batches: Batch[] = [];
let t = 1_765_000_000_000_000;
for (let k = 0; k < SCRAPES; k++) {
  for (let from = 0; from < SERIES; from += PER_REQUEST) batches.push({ ts: t++ + k * 15_000_000, from, to: Math.min(SERIES, from + PER_REQUEST) });
}

/** The frames of one block: its payload and both encodings. */
interface Block {
  raw: Uint8Array;
  firstTs: number;
  updates: number;
  one: Uint8Array;
  three: Uint8Array;
}

function blocksOf(target: number): Block[] {
  const out: Block[] = [];
  for (let b = 0; b < batches.length; ) {
    const mine: Batch[] = [];
    let n = 0;
    while (b < batches.length && n < target) {
      const batch = batches[b++] as Batch;
      mine.push(batch);
      n += batch.to - batch.from;
    }
    const ids = new Int32Array(n);
    const values = new Float64Array(n);
    let u = 0;
    for (const batch of mine) {
      const k = Math.floor((batch.ts - 1_765_000_000_000_000) / 15_000_000);
      for (let i = batch.from; i < batch.to; i++, u++) {
        ids[u] = i;
        values[u] = valueOf(i, k);
      }
    }
    const ts = mine.map((x) => x.ts);
    const raw = encodeBatches({ ts, counts: mine.map((x) => x.to - x.from), ids, values, batchCount: mine.length, updateCount: n }, new ByteWriter(1 << 20)).slice();
    const meta = { type: BlockType.DELTA, firstTs: ts[0] as number, lastTs: ts[ts.length - 1] as number, batches: mine.length, updates: n };
    out.push({ raw, firstTs: meta.firstTs, updates: n, one: encodeFrame(meta, raw), three: encodeSplitFrame(meta, raw) });
  }
  return out;
}

/** Microseconds a block for `fn` over every block, best of ROUNDS passes (the machine is shared). */
function usPerBlock(blocks: Block[], fn: (b: Block) => unknown): number {
  for (const b of blocks) fn(b);
  let best = Infinity;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    for (const b of blocks) fn(b);
    best = Math.min(best, performance.now() - t0);
  }
  return Math.round((best / blocks.length) * 1000 * 10) / 10;
}

const samples = SERIES * SCRAPES;
const into = new PayloadBuffer(64 * 1024 * 1024);
const results = BLOCK_UPDATES.map((target) => {
  const blocks = blocksOf(target);
  let raw = 0;
  let one = 0;
  let three = 0;
  let headRaw = 0;
  let headStored = 0;
  let lz4Heads = 0;
  for (const b of blocks) {
    raw += b.raw.length;
    one += b.one.length;
    three += b.three.length;
    const stored = b.three.subarray(FRAME_HEADER_BYTES);
    const h = splitHeadRawBytes(stored);
    const sh = splitBodiesOffset(stored) - SPLIT_LENGTHS_BYTES;
    headRaw += h;
    headStored += sh;
    if (sh < h) lz4Heads++;
  }
  const perSample = (bytes: number): number => Number((bytes / samples).toFixed(3));
  return {
    blockUpdates: target,
    blocks: blocks.length,
    bytesPerSample: { raw: perSample(raw), codec1: perSample(one), codec3: perSample(three), codec3Head: perSample(headStored + blocks.length * (FRAME_HEADER_BYTES + SPLIT_LENGTHS_BYTES)), codec3Bodies: perSample(three - headStored - blocks.length * (FRAME_HEADER_BYTES + SPLIT_LENGTHS_BYTES)) },
    codec3OverCodec1: Number((three / one).toFixed(3)),
    head: { rawBytesPerBlock: Math.round(headRaw / blocks.length), storedBytesPerBlock: Math.round(headStored / blocks.length), lz4Heads },
    openFrameUsPerBlock: {
      codec1: usPerBlock(blocks, (b) => openFrame(b.one, 'bench', into)),
      codec3: usPerBlock(blocks, (b) => openFrame(b.three, 'bench', into)),
      codec3HeadCheck: usPerBlock(blocks, (b) => payloadBodiesStart(b.raw)),
      // For scale: what every reader does next with the payload (a whole decode).
      decodeBatches: usPerBlock(blocks, (b) => decodeBatches(b.raw, b.firstTs)),
    },
  };
});

console.log(JSON.stringify({ bench: 'split-frame', series: SERIES, scrapes: SCRAPES, perRequest: PER_REQUEST, samples, results }, null, 1));
