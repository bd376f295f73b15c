/**
 * What goes into blocks: the open delta block (batches appended but not sealed), new path
 * definitions, and the latest value of every path (for images). Sealing encodes the open
 * block into frames; writing them to disk is the writer's business.
 */
import { TapedeckError } from '../protocol/errors.js';
import { isValidPath, valueArray, type Update, type Value } from '../protocol/value.js';
import { BlockType, encodeFrame, type FrameMeta } from './codec/frame.js';
import { ByteWriter } from './codec/bytes.js';
import { encodeBatches, type PathDef } from './codec/payload.js';
import { encodeNumberFrameNative, type NumberBlock } from './codec/native-payload.js';
import { batchBytes, estimateBytes, imageParts, pathsFrames, type FrameItem } from './frame-parts.js';
import { STORAGE_LIMITS } from './limits.js';
import type { Archive } from './archive.js';

export type { FrameItem } from './frame-parts.js';

export class BlockBuilder {
  private readonly a: Archive;
  private bTs: number[] = [];
  private bCounts: number[] = [];
  // The open block's updates: ids and values [0, bN), in buffers reused from block to block
  // (grown by doubling; a block holds at most blockUpdatesTarget + one batch). While every
  // value of the block is a number they live unboxed in bNums (no allocation per update);
  // the first other value moves the block to bValues (see toGeneric).
  private bIds = new Int32Array(STORAGE_LIMITS.blockUpdatesTarget);
  private bNums = new Float64Array(STORAGE_LIMITS.blockUpdatesTarget);
  private bAllNum = true;
  // Value arrays start as generic (tagged) elements: V8 quiets signalling NaNs stored into
  // an array of only doubles, and Prometheus' stale marker must stay bit-exact. Typed
  // arrays keep every bit.
  private bValues: Value[] = valueArray(STORAGE_LIMITS.blockUpdatesTarget);
  private bN = 0;
  private bEstBytes = 0;
  private pendingDefs: PathDef[] = [];
  private readonly scratch = new ByteWriter(1 << 20);
  private idScratch = new Int32Array(1024);
  private valScratch: Value[] = valueArray(1024);
  // The latest value of every path (for images): stateKind 0 = none, 1 = the number in
  // stateNums, 2 = the value in stateVals. Numbers stay unboxed, as in the open block. It
  // takes a block's values when the block is sealed (latestOfBlock), not per update: the
  // native encoder sets it per column, and images are made after a seal.
  private stateKind = new Uint8Array(1024);
  private stateNums = new Float64Array(1024);
  private stateVals: Value[] = valueArray(1024);
  /** Paths whose latest value is in stateVals (kind 2): the native encoder sets kind 1 only when there are none. */
  private stateValsHeld = 0;
  // Column appends name paths by handle (pathId): its path, and its archive id once the
  // path is defined (-1 before its first update: a path is defined at the time of its first
  // update, so that pathFirstTs stays in time order and a state never waits for it).
  private readonly handleOf = new Map<string, number>();
  private readonly handlePaths: string[] = [];
  private handleIds = new Int32Array(256).fill(-1);

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

  /** The handle of `path` for addColumns (the same for the builder's life). Throws TPD_BAD_PATH. */
  pathId(path: string): number {
    const known = this.handleOf.get(path);
    if (known !== undefined) return known;
    if (typeof path !== 'string' || !isValidPath(path)) {
      throw new TapedeckError('TPD_BAD_PATH', `invalid path ${JSON.stringify(String(path)).slice(0, 200)}`);
    }
    const h = this.handlePaths.length;
    if (h >= this.handleIds.length) {
      const next = new Int32Array(this.handleIds.length * 2).fill(-1);
      next.set(this.handleIds);
      this.handleIds = next;
    }
    this.handlePaths.push(path);
    this.handleOf.set(path, h);
    this.handleIds[h] = this.a.pathIds.get(path) ?? -1;
    return h;
  }

  /**
   * Adds one batch stamped `t` from [path, value] pairs: resolves them to ids and values
   * in scratch columns, then records them as addColumns does. Validates everything first:
   * on TPD_BAD_PATH, TPD_BAD_ARGUMENT or TPD_BATCH_TOO_LARGE nothing was added.
   */
  add(updates: readonly Update[], t: number): void {
    const n = updates.length;
    if (this.idScratch.length < n) this.idScratch = new Int32Array(Math.max(n, this.idScratch.length * 2));
    if (this.valScratch.length < n) this.valScratch = valueArray(Math.max(n, this.valScratch.length * 2));
    const ids = this.idScratch;
    const vals = this.valScratch;
    const pathIds = this.a.pathIds;
    let est = 0;
    let strUnits = 0;
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
      const v = u[1] ?? null;
      vals[i] = v;
      if (typeof v === 'number') est += 3;
      else {
        est += estimateBytes(v, i);
        if (typeof v === 'string') strUnits += v.length;
      }
    }
    this.checkBatchBytes(batchBytes(est, strUnits, vals, n, STORAGE_LIMITS.batchBytesMax));
    if (unknown > 0) {
      for (let i = 0; i < n; i++) {
        if (ids[i] !== -1) continue;
        const path = (updates[i] as Update)[0];
        ids[i] = pathIds.get(path) ?? this.define(path, t); // a new path may repeat within one batch
      }
    }
    this.record(ids, vals, n, t, est);
    vals.fill(null, 0, n); // drop references to the caller's values
  }

  /**
   * Adds one batch stamped `t` from columns: handles of pathId() and their values (numbers
   * in a Float64Array, or any values). Validates everything first, as add().
   */
  addColumns(handles: Uint32Array, values: Float64Array | readonly Value[], t: number): void {
    const n = handles.length;
    if (values.length !== n) throw new TapedeckError('TPD_BAD_ARGUMENT', `${n} path ids but ${values.length} values`);
    if (this.idScratch.length < n) this.idScratch = new Int32Array(Math.max(n, this.idScratch.length * 2));
    const ids = this.idScratch;
    const handleIds = this.handleIds;
    const nh = this.handlePaths.length;
    let unknown = 0;
    for (let i = 0; i < n; i++) {
      const h = handles[i] as number;
      if (h >= nh) throw new TapedeckError('TPD_BAD_ARGUMENT', `update ${i}: ${h} is not a path id of this writer (writer.pathId)`);
      const id = handleIds[h] as number;
      ids[i] = id;
      if (id < 0) unknown++;
    }
    let est = 3 * n;
    if (!(values instanceof Float64Array)) {
      est = 0;
      let strUnits = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === 'number') est += 3;
        else {
          est += estimateBytes(v, i);
          if (typeof v === 'string') strUnits += v.length;
        }
      }
      this.checkBatchBytes(batchBytes(est, strUnits, values, n, STORAGE_LIMITS.batchBytesMax));
    }
    if (unknown > 0) {
      for (let i = 0; i < n; i++) {
        if (ids[i] !== -1) continue;
        const h = handles[i] as number;
        let id = this.handleIds[h] as number; // a new path may repeat within one batch
        if (id < 0) {
          const path = this.handlePaths[h] as string;
          id = this.a.pathIds.get(path) ?? this.define(path, t); // or was defined by add()
          this.handleIds[h] = id;
        }
        ids[i] = id;
      }
    }
    this.record(ids, values, n, t, est);
  }

  private checkBatchBytes(est: number): void {
    if (est > STORAGE_LIMITS.batchBytesMax) {
      throw new TapedeckError('TPD_BATCH_TOO_LARGE', `batch is about ${est} bytes; the limit is ${STORAGE_LIMITS.batchBytesMax}`);
    }
  }

  private define(path: string, t: number): number {
    const id = this.a.definePath(path, t);
    this.pendingDefs.push({ id, path, firstTs: t });
    return id;
  }

  /** Records ids[0, n) (defined archive ids) and their values into the open block and the state. */
  private record(ids: Int32Array, values: Float64Array | readonly Value[], n: number, t: number, est: number): void {
    const base = this.bN;
    if (this.bIds.length < base + n) this.grow(base + n);
    this.bIds.set(n === ids.length ? ids : ids.subarray(0, n), base);
    if (values instanceof Float64Array) {
      if (this.bAllNum) this.bNums.set(values, base);
      else for (let i = 0; i < n; i++) this.bValues[base + i] = values[i] as number;
    } else {
      for (let i = 0; i < n; i++) {
        const v = values[i] ?? null;
        if (typeof v === 'number') {
          if (this.bAllNum) this.bNums[base + i] = v;
          else this.bValues[base + i] = v;
        } else {
          if (this.bAllNum) this.toGeneric(base + i);
          this.bValues[base + i] = v;
        }
      }
    }
    this.bN = base + n;
    this.bTs.push(t);
    this.bCounts.push(n);
    this.bEstBytes += est + 2;
  }

  /** The open block's first non-number: its numbers so far move to the generic array. */
  private toGeneric(upto: number): void {
    const nums = this.bNums;
    const vals = this.bValues;
    for (let i = 0; i < upto; i++) vals[i] = nums[i] as number;
    this.bAllNum = false;
  }

  private grow(updates: number): void {
    const size = Math.max(updates, this.bIds.length * 2);
    const ids = new Int32Array(size);
    ids.set(this.bIds.subarray(0, this.bN));
    this.bIds = ids;
    const nums = new Float64Array(size);
    nums.set(this.bNums.subarray(0, this.bN));
    this.bNums = nums;
  }

  setState(id: number, v: Value): void {
    if (id >= this.stateKind.length) this.growState(id + 1);
    this.setLatest(id, v);
  }

  private setLatest(id: number, v: Value): void {
    const kind = this.stateKind;
    if (typeof v === 'number') {
      if (kind[id] === 2) {
        this.stateVals[id] = null;
        this.stateValsHeld--;
      }
      kind[id] = 1;
      this.stateNums[id] = v;
    } else {
      if (kind[id] !== 2) this.stateValsHeld++;
      kind[id] = 2;
      this.stateVals[id] = v;
    }
  }

  /** The open block's values into the latest values, in order (what the native encoder did not set). */
  private latestOfBlock(): void {
    const n = this.bN;
    const ids = this.bIds;
    if (this.bAllNum) {
      const kind = this.stateKind;
      const nums = this.stateNums;
      const v = this.bNums;
      for (let i = 0; i < n; i++) {
        const id = ids[i] as number;
        if (kind[id] === 2) {
          this.stateVals[id] = null;
          this.stateValsHeld--;
        }
        kind[id] = 1;
        nums[id] = v[i] as number;
      }
    } else {
      const vals = this.bValues;
      for (let i = 0; i < n; i++) this.setLatest(ids[i] as number, vals[i] ?? null);
    }
  }

  /** The latest-value arrays hold every defined path (before a block's values go in). */
  private stateFitsPaths(): void {
    if (this.stateKind.length < this.a.paths.length) this.growState(this.a.paths.length);
  }

  private growState(ids: number): void {
    const size = Math.max(ids, this.stateKind.length * 2);
    const kind = new Uint8Array(size);
    kind.set(this.stateKind);
    this.stateKind = kind;
    const nums = new Float64Array(size);
    nums.set(this.stateNums);
    this.stateNums = nums;
  }

  /** Encodes the open block: a PATHS frame for new paths (if any), then the DELTA frame. */
  seal(): FrameItem[] {
    const nb = this.bTs.length;
    if (nb === 0) return [];
    const out: FrameItem[] = [];
    if (this.pendingDefs.length > 0) {
      const defs = this.pendingDefs;
      this.pendingDefs = [];
      out.push(...pathsFrames(defs, (defs[0] as PathDef).firstTs));
    }
    const firstTs = this.bTs[0] as number;
    const lastTs = this.bTs[nb - 1] as number;
    this.stateFitsPaths();
    const meta: FrameMeta = { type: BlockType.DELTA, firstTs, lastTs, batches: nb, updates: this.bN };
    const block = { ts: this.bTs, counts: this.bCounts, ids: this.bIds, values: this.bAllNum ? this.bNums : this.bValues, batchCount: nb, updateCount: this.bN };
    // A block of numbers: the native encoder writes the whole frame in one call, and the
    // latest values (per column) while no path's latest value is another kind.
    const latest = this.stateValsHeld === 0 ? { nums: this.stateNums, kinds: this.stateKind } : undefined;
    let bytes = this.bAllNum ? encodeNumberFrameNative(block as NumberBlock, firstTs, lastTs, latest) : undefined;
    if (bytes === undefined || latest === undefined) this.latestOfBlock();
    bytes ??= encodeFrame(meta, encodeBatches(block, this.scratch));
    out.push({ kind: 'frame', bytes, meta, defs: undefined });
    this.bTs = [];
    this.bCounts = [];
    // Drop the values (they may be large) but keep the buffers for the next block.
    if (!this.bAllNum) this.bValues.fill(null, 0, this.bN);
    this.bAllNum = true;
    this.bN = 0;
    this.bEstBytes = 0;
    return out;
  }

  /**
   * A full image: the latest value of every path that has one, as of `ts`, in one IMAGE
   * frame or, past framePartBytesTarget, in consecutive IMAGE frames of that one time.
   */
  imageFrames(ts: number): FrameItem[] {
    // The writer seals before it makes an image; an open block's values count all the same.
    if (this.bN > 0) {
      this.stateFitsPaths();
      this.latestOfBlock();
    }
    // Ids in an Int32Array, as the open block's: the encoder's loops over ids then see one
    // kind of array (a number[] here made them polymorphic for every block after it).
    const all = new Int32Array(this.a.paths.length);
    let n = 0;
    const values = valueArray(this.a.paths.length);
    for (let id = 0; id < this.a.paths.length; id++) {
      const kind = this.stateKind[id];
      if (kind === 1) values[n] = this.stateNums[id] as number;
      else if (kind === 2) values[n] = this.stateVals[id] as Value;
      else continue;
      all[n++] = id;
    }
    values.length = n;
    const out: FrameItem[] = [];
    let from = 0;
    for (const end of imageParts(values, n)) {
      const ids = all.subarray(from, end);
      const part = from === 0 && end === n ? values : values.slice(from, end);
      const count = end - from;
      const raw = encodeBatches({ ts: [ts], counts: [count], ids, values: part, batchCount: 1, updateCount: count }, this.scratch);
      const meta: FrameMeta = { type: BlockType.IMAGE, firstTs: ts, lastTs: ts, batches: 1, updates: count };
      out.push({ kind: 'frame', bytes: encodeFrame(meta, raw), meta, defs: undefined });
      from = end;
    }
    return out;
  }

  /** The frames every file starts with: the whole path dictionary and a full image. */
  startFrames(ts: number): FrameItem[] {
    const defs: PathDef[] = this.a.paths.map((path, id) => ({ id, path, firstTs: this.a.pathFirstTs[id] as number }));
    this.pendingDefs = [];
    return [...pathsFrames(defs, ts), ...this.imageFrames(ts)];
  }
}
