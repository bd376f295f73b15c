/**
 * What goes into blocks: the open delta block (batches appended but not sealed), new path
 * definitions, and the latest value of every path (for images). Sealing encodes the open
 * block into frames; writing them to disk is the writer's business.
 */
import { TapedeckError } from '../protocol/errors.js';
import { isValidPath, type Update, type Value } from '../protocol/value.js';
import { MsgpackWriter } from '../protocol/value-msgpack.js';
import { BlockType, encodeFrame, type FrameMeta } from './codec/frame.js';
import { ByteWriter } from './codec/bytes.js';
import { encodeBatches, encodePathDefs, genericArray, type PathDef } from './codec/payload.js';
import { STORAGE_LIMITS } from './limits.js';
import type { Archive } from './archive.js';

/** An encoded frame on its way to disk, with the path definitions it carries. */
export interface FrameItem {
  kind: 'frame';
  bytes: Uint8Array;
  meta: FrameMeta;
  defs: PathDef[] | undefined;
}

/** Sizes arrays and objects exactly as the archive's msgpack columns will write them. */
const estimateWriter = new MsgpackWriter();

export class BlockBuilder {
  private readonly a: Archive;
  private bTs: number[] = [];
  private bCounts: number[] = [];
  // The open block's updates: ids and values [0, bN), in buffers reused from block to block
  // (grown by doubling; a block holds at most blockUpdatesTarget + one batch).
  private bIds = new Int32Array(STORAGE_LIMITS.blockUpdatesTarget);
  // Value arrays start as generic (tagged) elements: V8 quiets signalling NaNs stored into
  // an array of only doubles, and Prometheus' stale marker must stay bit-exact.
  private bValues: Value[] = genericArray(STORAGE_LIMITS.blockUpdatesTarget);
  private bN = 0;
  private bEstBytes = 0;
  private pendingDefs: PathDef[] = [];
  private readonly scratch = new ByteWriter(1 << 20);
  private idScratch = new Int32Array(1024);
  private stateVals: Value[] = genericArray(1024);
  private stateHas = new Uint8Array(1024);

  constructor(a: Archive) {
    this.a = a;
  }

  /** Batches in the open block. */
  get batches(): number {
    return this.bTs.length;
  }

  /** The open block has reached blockUpdatesTarget or blockRawBytesTarget. */
  get full(): boolean {
    return this.bN >= STORAGE_LIMITS.blockUpdatesTarget || this.bEstBytes >= STORAGE_LIMITS.blockRawBytesTarget;
  }

  /**
   * Adds one batch stamped `t`. Validates everything first: on TPD_BAD_PATH,
   * TPD_BAD_ARGUMENT or TPD_BATCH_TOO_LARGE nothing was added.
   */
  add(updates: readonly Update[], t: number): void {
    const n = updates.length;
    // Pass 1: validate and resolve ids without changing anything.
    if (this.idScratch.length < n) this.idScratch = new Int32Array(Math.max(n, this.idScratch.length * 2));
    const ids = this.idScratch;
    const pathIds = this.a.pathIds;
    let est = 0;
    let unknown = 0;
    for (let i = 0; i < n; i++) {
      const u = updates[i];
      if (typeof u !== 'object' || u === null) throw new TapedeckError('TPD_BAD_ARGUMENT', `update ${i} is not a [path, value] pair`);
      const path = u[0];
      const id = pathIds.get(path);
      if (id === undefined) {
        if (typeof path !== 'string' || !isValidPath(path)) {
          throw new TapedeckError('TPD_BAD_PATH', `update ${i}: invalid path ${JSON.stringify(String(path)).slice(0, 200)}`);
        }
        ids[i] = -1;
        unknown++;
      } else {
        ids[i] = id;
      }
      const v = u[1];
      est += typeof v === 'number' ? 3 : estimateBytes(v, i);
    }
    if (est > STORAGE_LIMITS.batchBytesMax) {
      throw new TapedeckError('TPD_BATCH_TOO_LARGE', `batch is about ${est} bytes; the limit is ${STORAGE_LIMITS.batchBytesMax}`);
    }

    // Pass 2: record.
    if (unknown > 0) {
      for (let i = 0; i < n; i++) {
        if (ids[i] !== -1) continue;
        const path = (updates[i] as Update)[0];
        let id = pathIds.get(path); // repeated new path within one batch
        if (id === undefined) {
          id = this.a.definePath(path, t);
          this.pendingDefs.push({ id, path, firstTs: t });
        }
        ids[i] = id;
      }
    }
    if (this.bIds.length < this.bN + n) {
      const next = new Int32Array(Math.max(this.bN + n, this.bIds.length * 2));
      next.set(this.bIds.subarray(0, this.bN));
      this.bIds = next;
    }
    const bIds = this.bIds;
    const bValues = this.bValues;
    const base = this.bN;
    if (this.stateHas.length < this.a.paths.length) this.growState(this.a.paths.length);
    const stateHas = this.stateHas;
    const stateVals = this.stateVals;
    for (let i = 0; i < n; i++) {
      const id = ids[i] as number;
      const v = (updates[i] as Update)[1] ?? null;
      bIds[base + i] = id;
      bValues[base + i] = v;
      stateHas[id] = 1;
      stateVals[id] = v;
    }
    this.bN = base + n;
    this.bTs.push(t);
    this.bCounts.push(n);
    this.bEstBytes += est + 2;
  }

  setState(id: number, v: Value): void {
    if (id >= this.stateHas.length) this.growState(id + 1);
    this.stateHas[id] = 1;
    this.stateVals[id] = v;
  }

  private growState(ids: number): void {
    const next = new Uint8Array(Math.max(ids, this.stateHas.length * 2));
    next.set(this.stateHas);
    this.stateHas = next;
  }

  /** Encodes the open block: a PATHS frame for new paths (if any), then the DELTA frame. */
  seal(): FrameItem[] {
    const nb = this.bTs.length;
    if (nb === 0) return [];
    const out: FrameItem[] = [];
    if (this.pendingDefs.length > 0) {
      const defs = this.pendingDefs;
      this.pendingDefs = [];
      out.push(pathsFrame(defs, (defs[0] as PathDef).firstTs));
    }
    const firstTs = this.bTs[0] as number;
    const lastTs = this.bTs[nb - 1] as number;
    const raw = encodeBatches(
      { ts: this.bTs, counts: this.bCounts, ids: this.bIds, values: this.bValues, batchCount: nb, updateCount: this.bN },
      this.scratch,
    );
    const meta: FrameMeta = { type: BlockType.DELTA, firstTs, lastTs, batches: nb, updates: this.bN };
    out.push({ kind: 'frame', bytes: encodeFrame(meta, raw), meta, defs: undefined });
    this.bTs = [];
    this.bCounts = [];
    // Drop the values (they may be large) but keep both buffers for the next block.
    this.bValues.fill(null, 0, this.bN);
    this.bN = 0;
    this.bEstBytes = 0;
    return out;
  }

  /** A full image: the latest value of every path that has one, as of `ts`. */
  imageFrame(ts: number): FrameItem {
    const ids: number[] = [];
    const values = genericArray(this.a.paths.length);
    for (let id = 0; id < this.a.paths.length; id++) {
      if (this.stateHas[id] === 1) {
        values[ids.length] = this.stateVals[id] as Value;
        ids.push(id);
      }
    }
    values.length = ids.length;
    const raw = encodeBatches({ ts: [ts], counts: [ids.length], ids, values, batchCount: 1, updateCount: ids.length }, this.scratch);
    const meta: FrameMeta = { type: BlockType.IMAGE, firstTs: ts, lastTs: ts, batches: 1, updates: ids.length };
    return { kind: 'frame', bytes: encodeFrame(meta, raw), meta, defs: undefined };
  }

  /** The frames every file starts with: the whole path dictionary and a full image. */
  startFrames(ts: number): FrameItem[] {
    const defs: PathDef[] = this.a.paths.map((path, id) => ({ id, path, firstTs: this.a.pathFirstTs[id] as number }));
    this.pendingDefs = [];
    return [pathsFrame(defs, ts), this.imageFrame(ts)];
  }
}

function pathsFrame(defs: PathDef[], baseTs: number): FrameItem {
  const ts = defs.length > 0 ? Math.min(baseTs, (defs[0] as PathDef).firstTs) : baseTs;
  const last = defs.length > 0 ? Math.max(ts, (defs[defs.length - 1] as PathDef).firstTs) : ts;
  const meta: FrameMeta = { type: BlockType.PATHS, firstTs: ts, lastTs: last, batches: 0, updates: defs.length };
  return { kind: 'frame', bytes: encodeFrame(meta, encodePathDefs(defs, ts)), meta, defs };
}

function estimateBytes(v: unknown, i: number): number {
  switch (typeof v) {
    case 'number':
      return 3;
    case 'boolean':
      return 1;
    case 'string':
      return v.length + 3;
    case 'undefined':
      return 1;
    case 'bigint':
      return 9;
    case 'object':
      if (v === null) return 1;
      if (v instanceof Uint8Array) return v.length + 5;
      try {
        estimateWriter.reset().value(v as Value);
        return estimateWriter.written().length;
      } catch (err) {
        throw new TapedeckError('TPD_BAD_ARGUMENT', `update ${i}: value cannot be encoded: ${(err as Error).message}`);
      }
    default:
      throw new TapedeckError('TPD_BAD_ARGUMENT', `update ${i}: a ${typeof v} is not a recordable value`);
  }
}
