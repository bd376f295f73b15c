/**
 * The workload interchange file every side of the peer harness reads, so that Tapedeck,
 * netidx-archive (src/main.rs) and MCAP write exactly the same updates. Little-endian:
 *
 *   "TPDWKLD1"                        8 bytes of magic
 *   u32 pathCount, then per path      u32 byteLength + UTF-8 bytes
 *   u32 poolCount, then per batch     u32 n, n x u32 path id, n x f64 value
 *   u32 batchCount, then              batchCount x f64 timestamp (µs since the epoch)
 *
 * Batch i of the run is pool[i % poolCount] stamped with timestamp i. A workload whose every
 * batch is distinct (fabric) has poolCount = batchCount. Values are float64 only: both
 * workloads of the "Performance" issue are numbers.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export const WORKLOAD_MAGIC = 'TPDWKLD1';

export interface PoolBatch {
  ids: Uint32Array;
  values: Float64Array;
}

export interface Workload {
  name: string;
  paths: string[];
  pool: PoolBatch[];
  /** One timestamp per batch of the run, in µs, increasing. */
  ts: Float64Array;
}

export function workloadUpdates(w: Workload): number {
  let n = 0;
  for (let i = 0; i < w.ts.length; i++) n += (w.pool[i % w.pool.length] as PoolBatch).ids.length;
  return n;
}

export function encodeWorkload(w: Workload): Uint8Array {
  const pathBytes = w.paths.map((p) => Buffer.from(p, 'utf8'));
  let size = 8 + 4 + 4 + 4 + w.ts.length * 8;
  for (const b of pathBytes) size += 4 + b.length;
  for (const b of w.pool) size += 4 + b.ids.length * 12;
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  let o = 0;
  out.set(Buffer.from(WORKLOAD_MAGIC, 'ascii'), o);
  o += 8;
  dv.setUint32(o, pathBytes.length, true);
  o += 4;
  for (const b of pathBytes) {
    dv.setUint32(o, b.length, true);
    out.set(b, o + 4);
    o += 4 + b.length;
  }
  dv.setUint32(o, w.pool.length, true);
  o += 4;
  for (const b of w.pool) {
    dv.setUint32(o, b.ids.length, true);
    o += 4;
    for (const id of b.ids) {
      dv.setUint32(o, id, true);
      o += 4;
    }
    for (const v of b.values) {
      dv.setFloat64(o, v, true);
      o += 8;
    }
  }
  dv.setUint32(o, w.ts.length, true);
  o += 4;
  for (const t of w.ts) {
    dv.setFloat64(o, t, true);
    o += 8;
  }
  return out;
}

export function decodeWorkload(name: string, bytes: Uint8Array): Workload {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (Buffer.from(bytes.subarray(0, 8)).toString('ascii') !== WORKLOAD_MAGIC) throw new Error(`${name}: not a workload file`);
  let o = 8;
  const u32 = (): number => {
    const v = dv.getUint32(o, true);
    o += 4;
    return v;
  };
  const f64 = (): number => {
    const v = dv.getFloat64(o, true);
    o += 8;
    return v;
  };
  const paths: string[] = [];
  for (let i = u32(); i > 0; i--) {
    const len = u32();
    paths.push(Buffer.from(bytes.subarray(o, o + len)).toString('utf8'));
    o += len;
  }
  const pool: PoolBatch[] = [];
  for (let i = u32(); i > 0; i--) {
    const n = u32();
    const ids = new Uint32Array(n);
    const values = new Float64Array(n);
    for (let k = 0; k < n; k++) ids[k] = u32();
    for (let k = 0; k < n; k++) values[k] = f64();
    pool.push({ ids, values });
  }
  const ts = new Float64Array(u32());
  for (let i = 0; i < ts.length; i++) ts[i] = f64();
  if (o !== bytes.byteLength) throw new Error(`${name}: ${bytes.byteLength - o} trailing bytes`);
  return { name, paths, pool, ts };
}

export function writeWorkloadFile(file: string, w: Workload): void {
  writeFileSync(file, encodeWorkload(w));
}

export function readWorkloadFile(file: string): Workload {
  return decodeWorkload(file, readFileSync(file));
}
