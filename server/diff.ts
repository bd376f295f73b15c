/**
 * "What changed" between two times (GET /api/v1/diff), as a pure fold over path ids: it
 * starts from the state at `start`, takes every update of (start, end] in time order (per
 * path: paths do not interact) and answers, per path, the value at start and at end, how
 * many updates changed the value, when the first and last change happened, and the
 * smallest and largest number held. No I/O here: the pass (server/diff-pass.ts) feeds it
 * blocks decoded by columns or by updates, the unit tests plain arrays.
 *
 * A change is an update whose value differs from the value the path held (deep equality,
 * NaN equal to itself, 0 and -0 distinct, as stored): a poll that repeats a value updates
 * the path without changing it. A path "has no value" when it was never recorded or holds
 * null (the recorder's way of saying a leaf went away), so it appears when it goes from no
 * value to a value and disappears the other way.
 */
import type { Value } from '../protocol/value.js';
import type { DecodedBatches } from '../storage/codec/payload.js';
import { ColumnPlace, type ColumnBlock } from '../storage/column-block.js';
import { valueToJson } from '../protocol/value-json.js';
import { formatTs } from '../protocol/time.js';

/** One path's answer, in the JSON form: `start`/`end` are absent when the path had no value recorded. */
export interface PathDiff {
  path: string;
  start?: unknown;
  end?: unknown;
  /** Updates in (start, end] that changed the value. */
  changes: number;
  /** Updates in (start, end], changed or not. */
  updates: number;
  firstTs: number;
  firstTime: string;
  lastTs: number;
  lastTime: string;
  /** Smallest and largest number the path held in [start, end] (NaN left out); absent without numbers. */
  min?: unknown;
  max?: unknown;
}

export interface DiffAnswer {
  /** Changed paths (at least one change), by path, at most `listedMax`. */
  paths: PathDiff[];
  appeared: string[];
  disappeared: string[];
  counts: { changed: number; appeared: number; disappeared: number; unchanged: number };
  /** True when a list was cut at `listedMax`; the counts are always exact. */
  truncated: boolean;
}

/** Deep equality of recorded values (NaN equals NaN; 0 and -0 differ, as the archive keeps them). */
export function sameValue(a: Value | undefined, b: Value | undefined): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array && b instanceof Uint8Array) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!(Array.isArray(a) && Array.isArray(b)) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (!Object.hasOwn(b, k) || !sameValue(a[k], b[k])) return false;
  return true;
}

function hasValue(v: Value | undefined): boolean {
  return v !== undefined && v !== null;
}

/** A number min/max can take: NaN orders with nothing. */
function orderable(v: Value | undefined): v is number {
  return typeof v === 'number' && v === v;
}

/**
 * The fold. Per-id typed arrays rather than objects: a day of 10 k paths is millions of
 * updates, and the loops over them are what costs. A number held is kept in a Float64Array
 * (heldIsNumber set), not in the Value array, where each change would box a new number.
 */
export class DiffFold {
  private readonly start: ReadonlyMap<number, Value>;
  private held: (Value | undefined)[] = [];
  private heldNumber = new Float64Array(0);
  private heldIsNumber = new Uint8Array(0);
  private changes = new Uint32Array(0);
  private updates = new Uint32Array(0);
  private first = new Float64Array(0);
  private last = new Float64Array(0);
  private min = new Float64Array(0);
  private max = new Float64Array(0);

  constructor(start: ReadonlyMap<number, Value>, idsHint: number) {
    this.start = start;
    this.grow(idsHint);
    for (const [id, v] of start) {
      this.grow(id + 1);
      this.hold(id, v);
      if (orderable(v)) this.min[id] = this.max[id] = v;
    }
  }

  private hold(id: number, v: Value): void {
    if (typeof v === 'number') {
      this.heldNumber[id] = v;
      if (this.heldIsNumber[id] === 0) {
        this.heldIsNumber[id] = 1;
        this.held[id] = undefined;
      }
    } else {
      this.held[id] = v;
      this.heldIsNumber[id] = 0;
    }
  }

  private heldValue(id: number): Value | undefined {
    return this.heldIsNumber[id] === 1 ? this.heldNumber[id] : this.held[id];
  }

  /** Folds one update at `ts` (callers feed them in time order). */
  apply(id: number, v: Value, ts: number): void {
    if (id >= this.changes.length) this.grow(id + 1);
    this.updates[id]!++;
    if (orderable(v)) {
      // -0 is below 0, as Math.min has it (a min that met both is -0).
      if (v < this.min[id]! || this.min[id] !== this.min[id] || (v === 0 && this.min[id] === 0 && 1 / v < 0)) this.min[id] = v;
      if (v > this.max[id]! || this.max[id] !== this.max[id]) this.max[id] = v;
    }
    const held = this.heldValue(id);
    // Most updates repeat a number or a string: settle those without the deep comparison.
    if (held === v) {
      if (v !== 0 || Object.is(held, v)) return;
    } else if (typeof v !== 'object' || typeof held !== 'object' || held === null || v === null) {
      if (v !== v && held !== held) return; // NaN held, NaN again
    } else if (sameValue(held, v)) {
      return;
    }
    this.hold(id, v);
    if (this.changes[id]!++ === 0) this.first[id] = ts;
    this.last[id] = ts;
  }

  /**
   * Folds batches [kFrom, kTo) of a block decoded by columns: each path's values in time
   * order, which is all the fold needs (paths do not interact). Numbers are folded here
   * with the fold's arrays in locals: this is the loop of a day of 10 k paths.
   */
  applyColumns(b: ColumnBlock, kFrom: number, kTo: number): void {
    const whole = kFrom === 0 && kTo >= b.batches;
    for (let c = 0; c < b.columns; c++) {
      const id = b.ids[c] as number;
      if (id >= this.changes.length) this.grow(id + 1);
    }
    const { ids, start, place, nums } = b;
    const { updates, min: mins, max: maxes, heldNumber, heldIsNumber } = this;
    for (let c = 0; c < b.columns; c++) {
      let lo = start[c] as number;
      let hi = start[c + 1] as number;
      if (!whole) {
        while (lo < hi && batchAt(b, c, lo) < kFrom) lo++;
        while (hi > lo && batchAt(b, c, hi - 1) >= kTo) hi--;
      }
      if (lo === hi) continue;
      const id = ids[c] as number;
      if (place[c] !== ColumnPlace.NUMBERS) {
        for (let k = lo; k < hi; k++) this.apply(id, b.values[k] as Value, b.ts[batchAt(b, c, k)] as number);
        continue;
      }
      updates[id] = (updates[id] as number) + hi - lo;
      let min = mins[id] as number;
      let max = maxes[id] as number;
      let isNumber = heldIsNumber[id] === 1;
      let held = heldNumber[id] as number;
      let changes = 0;
      let firstK = 0;
      let lastK = 0;
      for (let k = lo; k < hi; k++) {
        const v = nums[k] as number;
        // min/max as apply(): NaN left out, and a NaN bound (none yet) always replaced.
        if (v === v) {
          if (!(v >= min) || (v === 0 && min === 0 && 1 / v < 0)) min = v;
          if (!(v <= max)) max = v;
        }
        // Object.is(held, v): equal and the same zero, or both NaN (decimal columns hold
        // neither; the rule stays whole should another kind of column land here).
        if (isNumber && (v === held ? v !== 0 || 1 / v === 1 / held : v !== v && held !== held)) continue;
        isNumber = true;
        held = v;
        if (changes++ === 0) firstK = k;
        lastK = k;
      }
      mins[id] = min;
      maxes[id] = max;
      if (changes > 0) this.changed(id, held, changes, b.ts[batchAt(b, c, firstK)] as number, b.ts[batchAt(b, c, lastK)] as number);
    }
  }

  /** A path's number changed `changes` times, first and last at these times. */
  private changed(id: number, held: number, changes: number, firstTs: number, lastTs: number): void {
    this.hold(id, held);
    if (this.changes[id] === 0) this.first[id] = firstTs;
    this.changes[id]! += changes;
    this.last[id] = lastTs;
  }

  /** Folds batches [kFrom, kTo) of a block decoded by updates, the paths `keep` passes (null: all). */
  applyDecoded(d: DecodedBatches, kFrom: number, kTo: number, keep: ((id: number) => boolean) | null): void {
    let at = 0;
    for (let k = 0; k < kTo; k++) {
      const end = at + (d.counts[k] as number);
      if (k < kFrom) {
        at = end;
        continue;
      }
      const ts = d.ts[k] as number;
      for (; at < end; at++) {
        const id = d.ids[at] as number;
        if (keep === null || keep(id)) this.apply(id, d.values[at] as Value, ts);
      }
    }
  }

  /** The answer: lists sorted by path and cut at `listedMax` each. */
  answer(pathOf: (id: number) => string, listedMax: number): DiffAnswer {
    const changed: number[] = [];
    const appeared: string[] = [];
    const disappeared: string[] = [];
    let unchanged = 0;
    for (let id = 0; id < this.changes.length; id++) {
      const before = this.start.get(id);
      const after = this.heldValue(id);
      if (this.changes[id] === 0) {
        if (before !== undefined) unchanged++;
        continue;
      }
      changed.push(id);
      if (!hasValue(before) && hasValue(after)) appeared.push(pathOf(id));
      if (hasValue(before) && !hasValue(after)) disappeared.push(pathOf(id));
    }
    const byPath = changed.map((id) => ({ id, path: pathOf(id) })).sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
    appeared.sort();
    disappeared.sort();
    const truncated = byPath.length > listedMax || appeared.length > listedMax || disappeared.length > listedMax;
    // Paths polled together change at the same few times: format each time once.
    const times = new Map<number, string>();
    const timeOf = (ts: number): string => {
      let t = times.get(ts);
      if (t === undefined) times.set(ts, (t = formatTs(ts)));
      return t;
    };
    return {
      paths: byPath.slice(0, listedMax).map(({ id, path }) => this.pathDiff(id, path, timeOf)),
      appeared: appeared.slice(0, listedMax),
      disappeared: disappeared.slice(0, listedMax),
      counts: { changed: changed.length, appeared: appeared.length, disappeared: disappeared.length, unchanged },
      truncated,
    };
  }

  private pathDiff(id: number, path: string, timeOf: (ts: number) => string): PathDiff {
    const before = this.start.get(id);
    const after = this.heldValue(id);
    const firstTs = this.first[id]!;
    const lastTs = this.last[id]!;
    const out: PathDiff = { path, changes: this.changes[id]!, updates: this.updates[id]!, firstTs, firstTime: timeOf(firstTs), lastTs, lastTime: timeOf(lastTs) };
    if (before !== undefined) out.start = valueToJson(before);
    if (after !== undefined) out.end = valueToJson(after);
    // NaN marks "no number seen" (the arrays start filled with NaN).
    if (this.min[id] === this.min[id]) {
      out.min = valueToJson(this.min[id]!);
      out.max = valueToJson(this.max[id]!);
    }
    return out;
  }

  private grow(size: number): void {
    if (size <= this.changes.length) return;
    const n = Math.max(size, this.changes.length * 2);
    const copy = <T extends Uint8Array | Uint32Array | Float64Array>(old: T, fresh: T, fill?: number): T => {
      if (fill !== undefined) fresh.fill(fill);
      fresh.set(old);
      return fresh;
    };
    this.heldNumber = copy(this.heldNumber, new Float64Array(n));
    this.heldIsNumber = copy(this.heldIsNumber, new Uint8Array(n));
    this.changes = copy(this.changes, new Uint32Array(n));
    this.updates = copy(this.updates, new Uint32Array(n));
    this.first = copy(this.first, new Float64Array(n));
    this.last = copy(this.last, new Float64Array(n));
    this.min = copy(this.min, new Float64Array(n), NaN);
    this.max = copy(this.max, new Float64Array(n), NaN);
  }
}

/** The batch of occurrence k of column c: its rank in the column when every batch lists the column once. */
function batchAt(b: ColumnBlock, c: number, k: number): number {
  return b.uniform ? k - (b.start[c] as number) : (b.batchOf[k] as number);
}
