/**
 * The state at a position keyed by path id (storage/cursor-state.ts builds it): a read-only
 * map over arrays indexed by id. A JS Map of 10 000 entries costs about 1 ms to build in V8
 * (its table is rehashed as it grows), a third of a mixed archive's whole seek and state;
 * these arrays cost a tenth of that, and get/has by id are an index. Iteration gives the
 * entries in the order they were set (not meaningful to callers, as the Map's was not).
 */
import { valueArray, valuePair, type Value } from '../protocol/value.js';

export class IdState implements ReadonlyMap<number, Value> {
  /** Values by id; generic elements (never raw doubles, which may change a NaN's payload: protocol/value.ts valueArray). */
  private vals: Value[];
  private present: Uint8Array;
  /** Ids in the order they were set. */
  private readonly order: number[] = [];

  /** `idsHint`: the ids expected are below it (more grow the arrays). */
  constructor(idsHint: number) {
    this.vals = valueArray(idsHint);
    this.present = new Uint8Array(idsHint);
  }

  /** Sets the value of `id` (a non-negative integer). */
  set(id: number, v: Value): this {
    if (id >= this.present.length) this.grow(id + 1);
    if (this.present[id] === 0) {
      this.present[id] = 1;
      this.order.push(id);
    }
    this.vals[id] = v;
    return this;
  }

  get size(): number {
    return this.order.length;
  }

  has(id: number): boolean {
    return this.present[id] === 1;
  }

  get(id: number): Value | undefined {
    return this.present[id] === 1 ? this.vals[id] : undefined;
  }

  forEach(fn: (value: Value, key: number, map: ReadonlyMap<number, Value>) => void, thisArg?: unknown): void {
    for (const id of this.order) fn.call(thisArg, this.vals[id] as Value, id, this);
  }

  entries(): MapIterator<[number, Value]> {
    // Pairs and the values array in generic elements (protocol/value.ts valueArray): a map
    // to `[id, v]` or to numbers builds arrays of doubles, which may change a NaN.
    const out = new Array<[number, Value]>(this.order.length);
    for (let i = 0; i < this.order.length; i++) {
      const id = this.order[i] as number;
      out[i] = valuePair(id, this.vals[id] as Value);
    }
    return out.values();
  }

  keys(): MapIterator<number> {
    return this.order.slice().values();
  }

  values(): MapIterator<Value> {
    const out = valueArray(this.order.length);
    for (let i = 0; i < this.order.length; i++) out[i] = this.vals[this.order[i] as number] as Value;
    return out.values();
  }

  [Symbol.iterator](): MapIterator<[number, Value]> {
    return this.entries();
  }

  private grow(n: number): void {
    const size = Math.max(n, this.present.length * 2);
    const present = new Uint8Array(size);
    present.set(this.present);
    this.present = present;
    const vals = valueArray(size);
    for (const id of this.order) vals[id] = this.vals[id] as Value;
    this.vals = vals;
  }
}
