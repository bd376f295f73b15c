/**
 * The JSON replay's frame writer alone: `node --import tsx test/bench/json-frame.ts`.
 * encodeJsonColumnFrameBytes (protocol/frames.ts) over fabric polls (64 switches x 8
 * counters, 320 s) in frames of 32 batches (16 384 updates, the session's frameUpdatesMax),
 * as a session's numbers-only column view holds them. Prints one JSON object: CPU ns per
 * update, the median and best of 7 rounds of 5 passes after 3 unmeasured ones, for the
 * pairs layout and the columns one (docs/playback.md, "Layouts"). `--parse` also times what
 * a client spends on those frames: JSON.parse of their text (as a ws client gets it, bytes
 * to string first), ns per update, each layout.
 */
import { encodeJsonColumnsViewFrame } from '../../protocol/frame-columns.js';
import { encodeJsonColumnFrameBytes } from '../../protocol/frames.js';
import { JsonBytesWriter } from '../../protocol/value-json-bytes.js';
import { fabricBatches } from '../../server/sim/fabric.js';

const batches = [...fabricBatches(7, 64, 320)];
const pathOf = new Map<string, number>();
const paths: string[] = [];
let n = 0;
for (const b of batches) n += b.updates.length;
const ts = new Float64Array(batches.length);
const starts = new Uint32Array(batches.length + 1);
const ids = new Uint32Array(n);
const nums = new Float64Array(n);
let u = 0;
batches.forEach((b, k) => {
  ts[k] = b.ts;
  starts[k] = u;
  for (const [p, v] of b.updates) {
    let id = pathOf.get(p);
    if (id === undefined) {
      id = paths.length;
      paths.push(p);
      pathOf.set(p, id);
    }
    ids[u] = id;
    nums[u++] = v as number;
  }
});
starts[batches.length] = u;
const view = { ts, starts, ids, nums, otherCount: 0, otherAt: new Uint32Array(0), others: [] };
const w = new JsonBytesWriter();
const PER_FRAME = 32;
let frameBytes = 0;

const encoders = {
  pairs: (k: number) => encodeJsonColumnFrameBytes(w, view, k, k + PER_FRAME, paths),
  columns: (k: number) => encodeJsonColumnsViewFrame(w, view, k, k + PER_FRAME, paths),
};

/** CPU ns per update of `work` over every frame, 5 passes. */
function round(work: (k: number) => void): number {
  const t0 = process.cpuUsage();
  let updates = 0;
  for (let pass = 0; pass < 5; pass++) {
    for (let k = 0; k + PER_FRAME <= batches.length; k += PER_FRAME) {
      work(k);
      updates += (starts[k + PER_FRAME] as number) - (starts[k] as number);
    }
  }
  const c = process.cpuUsage(t0);
  return ((c.user + c.system) * 1000) / updates;
}

/** The median and best of 7 rounds after 3 unmeasured ones. */
function timed(work: (k: number) => void): { nsPerUpdate: number; best: number } {
  for (let i = 0; i < 3; i++) round(work);
  const xs = Array.from({ length: 7 }, () => round(work)).sort((a, b) => a - b);
  return { nsPerUpdate: Number((xs[3] as number).toFixed(1)), best: Number((xs[0] as number).toFixed(1)) };
}

const out: Record<string, unknown> = { updates: n };
for (const [layout, encode] of Object.entries(encoders)) {
  out[layout] = { encode: timed((k) => (frameBytes = encode(k).length)), frameBytes };
  if (process.argv.includes('--parse')) {
    const texts = new Map<number, Buffer>();
    for (let k = 0; k + PER_FRAME <= batches.length; k += PER_FRAME) texts.set(k, Buffer.from(encode(k)));
    let sink = 0;
    (out[layout] as Record<string, unknown>).parse = timed((k) => (sink += (JSON.parse((texts.get(k) as Buffer).toString()) as { batches: unknown[] }).batches.length));
    if (sink === 0) throw new Error('nothing parsed');
  }
}
console.log(JSON.stringify(out));
