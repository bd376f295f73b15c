/**
 * "What changed" between two times (GET /api/v1/diff), as a pure fold over path ids: it
 * starts from the state at `start`, takes every update of (start, end] in time order and
 * answers, per path, the value at start and at end, how many updates changed the value,
 * when the first and last change happened, and the smallest and largest number held. No
 * I/O here: the route feeds it from a cursor, the unit tests from plain arrays.
 *
 * A change is an update whose value differs from the value the path held (deep equality,
 * NaN equal to itself, 0 and -0 distinct, as stored): a poll that repeats a value updates
 * the path without changing it. A path "has no value" when it was never recorded or holds
 * null (the recorder's way of saying a leaf went away), so it appears when it goes from no
 * value to a value and disappears the other way.
 */
import type { Value } from '../protocol/value.js';
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
 * updates, and apply() is the loop that costs.
 */
export class DiffFold {
  private readonly start: ReadonlyMap<number, Value>;
  private held: (Value | undefined)[] = [];
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
      this.held[id] = v;
      if (orderable(v)) this.min[id] = this.max[id] = v;
    }
  }

  /** Folds one update at `ts` (callers feed them in time order). */
  apply(id: number, v: Value, ts: number): void {
    if (id >= this.changes.length) this.grow(id + 1);
    this.updates[id]!++;
    if (orderable(v)) {
      if (v < this.min[id]! || this.min[id] !== this.min[id]) this.min[id] = v;
      if (v > this.max[id]! || this.max[id] !== this.max[id]) this.max[id] = v;
    }
    const held = this.held[id];
    // Most updates repeat a number or a string: settle those without the deep comparison.
    if (held === v) {
      if (v !== 0 || Object.is(held, v)) return;
    } else if (typeof v !== 'object' || typeof held !== 'object' || held === null || v === null) {
      if (v !== v && held !== held) return; // NaN held, NaN again
    } else if (sameValue(held, v)) {
      return;
    }
    this.held[id] = v;
    if (this.changes[id]!++ === 0) this.first[id] = ts;
    this.last[id] = ts;
  }

  /** The answer: lists sorted by path and cut at `listedMax` each. */
  answer(pathOf: (id: number) => string, listedMax: number): DiffAnswer {
    const changed: number[] = [];
    const appeared: string[] = [];
    const disappeared: string[] = [];
    let unchanged = 0;
    for (let id = 0; id < this.changes.length; id++) {
      const before = this.start.get(id);
      const after = this.held[id];
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
    return {
      paths: byPath.slice(0, listedMax).map(({ id, path }) => this.pathDiff(id, path)),
      appeared: appeared.slice(0, listedMax),
      disappeared: disappeared.slice(0, listedMax),
      counts: { changed: changed.length, appeared: appeared.length, disappeared: disappeared.length, unchanged },
      truncated,
    };
  }

  private pathDiff(id: number, path: string): PathDiff {
    const before = this.start.get(id);
    const after = this.held[id];
    const firstTs = this.first[id]!;
    const lastTs = this.last[id]!;
    const out: PathDiff = { path, changes: this.changes[id]!, updates: this.updates[id]!, firstTs, firstTime: formatTs(firstTs), lastTs, lastTime: formatTs(lastTs) };
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
    const copy = <T extends Uint32Array | Float64Array>(old: T, fresh: T, fill?: number): T => {
      if (fill !== undefined) fresh.fill(fill);
      fresh.set(old);
      return fresh;
    };
    this.changes = copy(this.changes, new Uint32Array(n));
    this.updates = copy(this.updates, new Uint32Array(n));
    this.first = copy(this.first, new Float64Array(n));
    this.last = copy(this.last, new Float64Array(n));
    this.min = copy(this.min, new Float64Array(n), NaN);
    this.max = copy(this.max, new Float64Array(n), NaN);
  }
}
